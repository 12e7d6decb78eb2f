"""OpenTelemetry tracing of the service, opt-in by OpenTelemetry's own environment variables:
``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``; ``none`` or unset: off) or an
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (then ``otlp``).
``OTEL_SERVICE_NAME`` names the service (default ``orders``).

When on, every request runs in a server span (OpenTelemetry's ASGI middleware), and the jobs
are traced (``QUART_JOBS_TRACING=auto`` finds the tracer provider set here): the span of a
``POST /orders`` is the parent of its job's enqueue, whose first attempt continues the trace,
in whichever process runs it. Needs ``pip install 'quart-jobs-order-service[otel]'``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from quart import Quart

from .config import SettingError

_EXPORTERS = ("otlp", "console")
_enabled = False


def exporter_name(env: Mapping[str, str]) -> str | None:
    """The span exporter the environment asks for, or ``None`` (tracing off)."""
    name = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if name == "none":
        return None
    if not name:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return "otlp" if endpoint else None
    if name not in _EXPORTERS:
        raise SettingError(f"OTEL_TRACES_EXPORTER={name!r}: use otlp, console or none")
    return name


def setup_tracing(env: Mapping[str, str] | None = None) -> bool:
    """Set the process's tracer provider as the environment asks; return whether tracing is
    on. Called once per process, before the app is created."""
    global _enabled
    if _enabled:  # set up already (a web process forked from the supervisor)
        return True
    env = os.environ if env is None else env
    name = exporter_name(env)
    if name is None:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError as exc:
        raise SettingError(
            f"tracing is asked for (OTEL_TRACES_EXPORTER / OTEL_EXPORTER_OTLP_ENDPOINT), but "
            f"{exc}: pip install 'quart-jobs-order-service[otel]'"
        ) from None
    exporter: Any
    if name == "console":
        exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise SettingError(
                "OTLP export needs opentelemetry-exporter-otlp-proto-http: "
                "pip install 'quart-jobs-order-service[otel]'"
            ) from None
        exporter = OTLPSpanExporter()
    service = env.get("OTEL_SERVICE_NAME") or "orders"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _enabled = True
    return True


def shutdown_tracing() -> None:
    """Export the spans still buffered (at the end of the process)."""
    if not _enabled:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()


def trace_requests(app: Quart) -> None:
    """Run each request of ``app`` in a server span, when tracing is on."""
    if not _enabled:
        return
    try:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    except ImportError:
        raise SettingError(
            "request spans need opentelemetry-instrumentation-asgi: "
            "pip install 'quart-jobs-order-service[otel]'"
        ) from None
    app.asgi_app = OpenTelemetryMiddleware(app.asgi_app)  # type: ignore[method-assign, assignment]
