"""OpenTelemetry tracing of jobs, from the enqueue to each attempt (``pip install
'quart-jobs[otel]'``).

    from quart_jobs.otel import JobsInstrumentor

    JobsInstrumentor().instrument()  # the global tracer provider, or tracer_provider=...

An enqueue makes a ``PRODUCER`` span per job (``send {queue}``), child of the span current at
the call (a request's), and stores its context with the job (W3C ``traceparent`` and
``tracestate``, :attr:`~quart_jobs.models.Job.trace_context`) in the same commit. Each attempt
runs under a ``CONSUMER`` span (``process {queue}``), in whichever process or machine claims
it: the first attempt is the producer span's child; a later attempt (a retry), and every
attempt of a job that runs apart from its enqueue (a periodic moment, a job enqueued to wait
for others), starts its own trace, linked to the producer span. The spans carry the
OpenTelemetry messaging attributes (``messaging.system`` ``quart_jobs``,
``messaging.destination.name`` the queue, ``messaging.message.id`` the job id,
``messaging.operation.type``) and ``quart_jobs.task``,
``quart_jobs.attempt``, ``quart_jobs.tier``, ``quart_jobs.priority``. A failed attempt's span
records the exception and has an error status.

While instrumented, log records made in a traced span carry ``trace_id`` and ``span_id``
(hexadecimal) as attributes, for formatters to show; the job log lines also say them in text.

This module is the only one of the library that imports OpenTelemetry; without
:meth:`JobsInstrumentor.instrument`, nothing of it runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        f"quart_jobs.otel needs OpenTelemetry ({exc}): pip install 'quart-jobs[otel]'"
    ) from exc

from . import tracing
from .models import EnqueueResult, Job, NewJob, Tier
from .periodic import is_moment_key

if TYPE_CHECKING:
    from .backends.base import Outcome

__all__ = ["JobsInstrumentor"]

#: The instrumentation's name and the ``messaging.system`` of its spans.
SYSTEM = "quart_jobs"
_INSTRUMENTS = ("quart-jobs",)
#: The entry of a job's stored trace context that says its attempts are linked to the enqueue,
#: not its children (a periodic moment's, a dependant's): they run apart from the request.
LINKED = "quart_jobs.linked"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("quart-jobs")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


class JobsInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces enqueues and attempts (see the module). ``instrument(tracer_provider=...)``
    takes the global tracer provider when none is given; calling it again does nothing until
    :meth:`uninstrument`."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(
            __name__, _version(), tracer_provider=kwargs.get("tracer_provider")
        )
        hooks = _Hooks(tracer)
        tracing.HOOKS.enqueue = hooks.enqueue
        tracing.HOOKS.attempt = hooks.attempt
        _install_log_ids()

    def _uninstrument(self, **kwargs: Any) -> None:
        tracing.HOOKS.enqueue = None
        tracing.HOOKS.attempt = None
        _remove_log_ids()


def _attributes(queue: str, operation: str, priority: int, task: str) -> dict[str, Any]:
    return {
        "messaging.system": SYSTEM,
        "messaging.destination.name": queue,
        "messaging.operation.type": operation,
        "messaging.operation.name": "send" if operation == "send" else "process",
        # the name of older versions of the conventions, which many back ends still show
        "messaging.operation": "publish" if operation == "send" else "process",
        "quart_jobs.task": task,
        "quart_jobs.priority": priority,
        "quart_jobs.tier": Tier.name_of(priority),
    }


class _Hooks:
    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def enqueue(self, jobs: Sequence[NewJob], linked: bool) -> _Producing:
        return _Producing(self.tracer, jobs, linked)

    def attempt(self, job: Job) -> _Attempt:
        return _Attempt(self.tracer, job)


class _Producing:
    """One enqueue: a producer span per job, each job carrying its own span's context (and,
    for a job whose attempts are linked rather than parented, :data:`LINKED`)."""

    def __init__(self, tracer: trace.Tracer, jobs: Sequence[NewJob], linked: bool) -> None:
        self.spans: list[Span] = []
        self.jobs: list[NewJob] = []
        for new in jobs:
            span = tracer.start_span(
                f"send {new.queue}",
                kind=SpanKind.PRODUCER,
                attributes=_attributes(new.queue, "send", new.priority, new.task),
            )
            carrier: dict[str, str] = {}
            propagate.inject(carrier, context=trace.set_span_in_context(span))
            if carrier and (linked or is_moment_key(new.key)):
                carrier[LINKED] = "1"
            self.spans.append(span)
            self.jobs.append(_with_context(new, json.dumps(carrier) if carrier else None))

    def end(self, results: Sequence[EnqueueResult] | None, error: BaseException | None) -> None:
        if results is not None:
            for span, result in zip(self.spans, results, strict=False):
                span.set_attribute("messaging.message.id", str(result.job.id))
                if not result.created:  # the key existed: the stored job is another's
                    span.set_attribute("quart_jobs.created", False)
        for span in self.spans:
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            span.end()


def _with_context(new: NewJob, trace_context: str | None) -> NewJob:
    return replace(new, trace_context=trace_context)


def _producer_context(job: Job) -> tuple[otel_context.Context | None, bool]:
    """The context stored with ``job`` at its enqueue, or ``None`` (untraced, unreadable), and
    whether its attempts are linked to it rather than its children."""
    if not job.trace_context:
        return None, False
    try:
        carrier = json.loads(job.trace_context)
    except ValueError:
        return None, False
    if not isinstance(carrier, dict):
        return None, False
    linked = carrier.pop(LINKED, None) is not None
    return propagate.extract({str(k): str(v) for k, v in carrier.items()}), linked


class _Attempt:
    """One attempt's consumer span: the producer's child on the first attempt, linked to the
    producer on a later one (a retry, a job an operator queued again) and on every attempt of a
    periodic moment or a dependant."""

    def __init__(self, tracer: trace.Tracer, job: Job) -> None:
        produced, linked = _producer_context(job)
        producer = None if produced is None else trace.get_current_span(produced)
        producer_ctx = None if producer is None else producer.get_span_context()
        if producer_ctx is not None and not producer_ctx.is_valid:
            producer_ctx = None
        first = job.attempts <= 1 and not linked
        attributes = _attributes(job.queue, "process", job.priority, job.task)
        attributes["messaging.message.id"] = str(job.id)
        attributes["quart_jobs.attempt"] = job.attempts
        links = [] if producer_ctx is None or first else [Link(producer_ctx)]
        # The first attempt continues the enqueue's trace; a retry, a periodic moment and a
        # dependant (they run apart from the request that enqueued them) start a trace of their
        # own (a new root: not under whatever span is current in the worker).
        parent = produced if first and producer_ctx is not None else otel_context.Context()
        self.span = tracer.start_span(
            f"process {job.queue}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
        )
        ids = self.span.get_span_context()
        self.log_fields = {
            "trace_id": trace.format_trace_id(ids.trace_id),
            "span_id": trace.format_span_id(ids.span_id),
        }

    def running(self) -> contextlib.AbstractContextManager[object]:
        return trace.use_span(
            self.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        )

    def failed(self, exc: BaseException, error: str) -> None:
        self.span.record_exception(exc)
        self.span.set_status(Status(StatusCode.ERROR, error))

    def end(self, outcome: Outcome | None) -> None:
        if outcome is None:
            self.span.set_attribute("quart_jobs.outcome", "lease_lost")
        else:
            self.span.set_attribute("quart_jobs.outcome", outcome.event.value)
            if outcome.stored_why is not None:
                self.span.set_attribute("quart_jobs.why", outcome.stored_why.value)
        self.span.end()


def tracer_provider_set() -> bool:
    """Whether the process set a global tracer provider (an SDK's, say), as opposed to the
    API's placeholder: what ``QUART_JOBS_TRACING=auto`` instruments on."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


# Log records made in a traced span carry its ids (``trace_id``, ``span_id``): a record
# factory wrapping the one in force, installed by ``instrument()`` and removed by
# ``uninstrument()``.
_previous_factory: Any = None


def _install_log_ids() -> None:
    global _previous_factory
    if _previous_factory is not None:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        ids = trace.get_current_span().get_span_context()
        if ids.is_valid:
            record.trace_id = trace.format_trace_id(ids.trace_id)
            record.span_id = trace.format_span_id(ids.span_id)
        return record

    _previous_factory = previous
    logging.setLogRecordFactory(factory)


def _remove_log_ids() -> None:
    global _previous_factory
    if _previous_factory is not None:
        logging.setLogRecordFactory(_previous_factory)
        _previous_factory = None
