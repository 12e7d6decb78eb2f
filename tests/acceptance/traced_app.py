"""A Quart app traced with OpenTelemetry, for the tracing test across processes: served by
Hypercorn (requests in server spans, OpenTelemetry's ASGI middleware) and run by
``quart-jobs --app tests.acceptance.traced_app:app worker``. Each process sets its own tracer
provider at import, writing its finished spans to ``SPANS_FILE`` (one JSON object a line);
``QUART_JOBS_TRACING`` is left at ``auto``, so the extension instruments the jobs."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from quart import Quart

from quart_jobs import QuartJobs, current_job


class FileExporter(SpanExporter):
    """Appends each finished span to a file as one JSON line (what a collector would get)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a", encoding="utf-8") as out:
            for span in spans:
                out.write(json.dumps(as_json(span)) + "\n")
        return SpanExportResult.SUCCESS


def as_json(span: ReadableSpan) -> dict[str, object]:
    assert span.context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent_id": None if span.parent is None else f"{span.parent.span_id:016x}",
        "links": [f"{link.context.span_id:016x}" for link in span.links],
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
        "pid": os.getpid(),
    }


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(FileExporter(os.environ["SPANS_FILE"])))
trace.set_tracer_provider(provider)

app = Quart(__name__)
app.config.update(
    QUART_JOBS_DATABASE_URL=os.environ["DATABASE_URL"],
    QUART_JOBS_EMBEDDED_WORKER=False,  # the web process only enqueues
    QUART_JOBS_POLL_INTERVAL=0.1,
    QUART_JOBS_RETRY_BASE=0.05,
    QUART_JOBS_RETRY_MAX_DELAY=0.1,
    QUART_JOBS_RETRY_MIN_DELAY=0.0,
)
jobs = QuartJobs(app)


@jobs.task(name="traced.flaky")
async def flaky(fail_times: int) -> int:
    """Fails its first ``fail_times`` attempts."""
    attempt = current_job().attempts
    if attempt <= fail_times:
        raise ValueError(f"attempt {attempt} fails")
    return attempt


@app.post("/work")
async def work() -> dict[str, int]:
    job = await jobs.enqueue(flaky, 1)
    return {"job_id": job.id}


@app.get("/readyz")
async def ready() -> str:
    return "ok"


app.asgi_app = OpenTelemetryMiddleware(app.asgi_app)  # type: ignore[method-assign, assignment]
