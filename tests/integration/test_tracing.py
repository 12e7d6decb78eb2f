"""OpenTelemetry tracing of jobs (``quart_jobs.otel``): a producer span per enqueue, its
context stored with the job, a consumer span per attempt (the first the producer's child, a
retry linked to it), the attributes, the error status, and the ids in the job log lines. With
the SDK's in-memory exporter, real workers, on the memory and SQLite backends."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from quart_jobs import Jobs, JobState, Transaction
from quart_jobs.otel import JobsInstrumentor
from quart_jobs.tracing import HOOKS

from . import tasks
from .conftest import wait_state

#: The tracer provider of each test's exporter (its own spans, such as a request's, go there).
PROVIDERS: dict[int, TracerProvider] = {}


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    instrumentor = JobsInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    PROVIDERS[id(spans)] = provider
    try:
        yield spans
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
        del PROVIDERS[id(spans)]


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in spans.get_finished_spans() if span.name == name]


async def finished(spans: InMemorySpanExporter, name: str, count: int) -> list[ReadableSpan]:
    """The ``count`` spans called ``name``, once they ended (a span ends after its outcome)."""
    async with asyncio.timeout(5):
        while len(named(spans, name)) < count:
            await asyncio.sleep(0.01)
    return sorted(named(spans, name), key=lambda s: s.start_time or 0)


async def test_an_enqueue_makes_a_producer_span_whose_context_is_stored_with_the_job(
    jobs: Jobs, exporter: InMemorySpanExporter
) -> None:
    with exporter_tracer(exporter).start_as_current_span("POST /orders") as request:
        job = await jobs.options(priority="vip", queue="mail").enqueue(tasks.record, 1)
    (send,) = named(exporter, "send mail")
    assert send.kind is SpanKind.PRODUCER
    assert send.parent is not None
    assert send.parent.span_id == request.get_span_context().span_id
    assert send.context is not None
    assert dict(send.attributes or {}) == {
        "messaging.system": "quart_jobs",
        "messaging.destination.name": "mail",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.operation": "publish",
        "quart_jobs.task": job.task,
        "quart_jobs.priority": 0,
        "quart_jobs.tier": "vip",
        "messaging.message.id": str(job.id),
    }
    stored = await jobs.get(job.id)
    assert stored.trace_context is not None
    traceparent = json.loads(stored.trace_context)["traceparent"]
    assert traceparent.startswith(f"00-{send.context.trace_id:032x}-{send.context.span_id:016x}-")


def exporter_tracer(exporter: InMemorySpanExporter) -> trace.Tracer:
    """A tracer of the instrumented provider (its spans reach ``exporter`` too)."""
    return PROVIDERS[id(exporter)].get_tracer("tests")


async def test_the_first_attempt_is_the_enqueue_s_child_and_a_retry_is_linked_to_it(
    jobs: Jobs, exporter: InMemorySpanExporter
) -> None:
    with exporter_tracer(exporter).start_as_current_span("request"):
        job = await jobs.enqueue(tasks.flaky, 1)  # the first attempt fails, the second succeeds
    async with jobs.run_worker():
        await wait_state(jobs, job.id, JobState.SUCCEEDED)
        first, second = await finished(exporter, "process default", 2)
    (send,) = named(exporter, "send default")
    assert send.context is not None and first.context is not None and second.context is not None

    assert first.kind is SpanKind.CONSUMER
    assert first.parent is not None and first.parent.span_id == send.context.span_id
    assert first.context.trace_id == send.context.trace_id
    assert first.attributes is not None
    assert first.attributes["quart_jobs.attempt"] == 1
    assert first.attributes["messaging.message.id"] == str(job.id)
    assert first.attributes["messaging.operation.type"] == "process"
    assert first.attributes["quart_jobs.outcome"] == "retried"
    assert first.status.status_code is StatusCode.ERROR
    assert first.status.description == "ValueError: attempt 1 fails"
    (exception,) = [event for event in first.events if event.name == "exception"]
    assert exception.attributes is not None
    assert exception.attributes["exception.type"] == "ValueError"

    assert second.parent is None  # a trace of its own, linked to the enqueue
    assert [link.context.span_id for link in second.links] == [send.context.span_id]
    assert second.attributes is not None and second.attributes["quart_jobs.attempt"] == 2
    assert second.attributes["quart_jobs.outcome"] == "succeeded"
    assert second.status.status_code is StatusCode.UNSET


async def beat() -> str:
    return "beat"


async def test_a_periodic_moment_and_a_dependant_run_in_traces_of_their_own_linked_to_the_enqueue(
    jobs: Jobs, exporter: InMemorySpanExporter
) -> None:
    """They run apart from the request or the scheduler round that enqueued them (a dependant
    once its parents ended, a moment's job whenever it is claimed): linked, not children."""
    jobs.periodic(every=3600, name="beat")(beat)
    with exporter_tracer(exporter).start_as_current_span("request"):
        first = await jobs.enqueue(tasks.record, "first")
        then = await jobs.options(after=[first]).enqueue(tasks.record, "then")
    assert await jobs.scheduler.tick() == 1
    (moment,) = [job for job in await jobs.list() if job.key is not None]
    async with jobs.run_worker():
        await wait_state(jobs, then.id, JobState.SUCCEEDED)
        await wait_state(jobs, moment.id, JobState.SUCCEEDED)
        spans = await finished(exporter, "process default", 3)
    sent = {_job_id(span): span.context for span in named(exporter, "send default")}
    ran = {_job_id(span): span for span in spans}
    assert sorted(sent) == sorted(ran) == sorted([first.id, then.id, moment.id])
    parent, first_sent = ran[first.id].parent, sent[first.id]
    assert parent is not None and first_sent is not None
    assert parent.span_id == first_sent.span_id
    for job_id in (then.id, moment.id):
        sent_here = sent[job_id]
        assert sent_here is not None
        assert ran[job_id].parent is None, job_id
        assert [link.context.span_id for link in ran[job_id].links] == [sent_here.span_id]


def _job_id(span: ReadableSpan) -> int:
    assert span.attributes is not None
    return int(str(span.attributes["messaging.message.id"]))


async def test_a_task_s_own_spans_and_logs_are_inside_its_attempt(
    jobs: Jobs, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="quart_jobs.worker")
    job = await jobs.enqueue(tasks.record, "x")
    async with jobs.run_worker():
        await wait_state(jobs, job.id, JobState.SUCCEEDED)
        (attempt,) = await finished(exporter, "process default", 1)
    assert attempt.context is not None
    trace_id = f"{attempt.context.trace_id:032x}"
    span_id = f"{attempt.context.span_id:016x}"
    lines = [r for r in caplog.records if getattr(r, "job_id", None) == job.id]
    assert [getattr(r, "event", None) for r in lines] == ["started", "succeeded"]
    for record in lines:
        assert getattr(record, "trace_id", None) == trace_id
        assert getattr(record, "span_id", None) == span_id
        assert record.getMessage().endswith(f" trace_id={trace_id} span_id={span_id}")


async def test_a_transaction_s_jobs_are_traced_under_the_caller_s_span_when_they_commit(
    jobs: Jobs, exporter: InMemorySpanExporter
) -> None:
    def place(tx: Transaction) -> int:
        return tx.enqueue(tasks.record, "in a transaction").id

    def refused(tx: Transaction) -> None:
        tx.enqueue(tasks.record, "rolled back")
        raise RuntimeError("the order is invalid")

    with exporter_tracer(exporter).start_as_current_span("request") as request:
        job_id = await jobs.transaction(place)
        with pytest.raises(RuntimeError):
            await jobs.transaction(refused)
    kept, rolled_back = sorted(named(exporter, "send default"), key=lambda s: s.start_time or 0)
    for span in (kept, rolled_back):
        assert span.parent is not None
        assert span.parent.span_id == request.get_span_context().span_id
    assert kept.attributes is not None and kept.attributes["messaging.message.id"] == str(job_id)
    assert kept.status.status_code is StatusCode.UNSET
    assert rolled_back.status.status_code is StatusCode.ERROR
    assert (await jobs.get(job_id)).trace_context is not None


async def test_uninstrumented_jobs_store_no_context_and_make_no_spans(jobs: Jobs) -> None:
    instrumentor = JobsInstrumentor()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    instrumentor.instrument(tracer_provider=provider)
    instrumentor.uninstrument()
    assert HOOKS.enqueue is None and HOOKS.attempt is None
    job = await jobs.enqueue(tasks.record, 1)
    async with jobs.run_worker():
        await wait_state(jobs, job.id, JobState.SUCCEEDED)
    assert (await jobs.get(job.id)).trace_context is None
    assert spans.get_finished_spans() == ()
    record = logging.getLogRecordFactory()("x", logging.INFO, "f", 1, "m", (), None)
    assert not hasattr(record, "trace_id")
