"""Which environment turns the service's tracing on, and how its log lines show the ids."""

from __future__ import annotations

import json
import logging

import pytest

from order_service.config import SettingError
from order_service.logs import JsonFormatter, TextFormatter
from order_service.tracing import exporter_name


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "Console"}, "console"),
    ],
)
def test_tracing_is_on_only_when_the_environment_asks(
    env: dict[str, str], expected: str | None
) -> None:
    assert exporter_name(env) == expected


def test_an_unknown_exporter_is_a_clear_setting_error() -> None:
    with pytest.raises(SettingError, match="OTEL_TRACES_EXPORTER='zipkin': use otlp, console"):
        exporter_name({"OTEL_TRACES_EXPORTER": "zipkin"})


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"msg": message, "levelname": "INFO", "name": "orders"})
    made.__dict__.update(extra)
    return made


def test_a_line_in_a_span_shows_its_ids_in_text_and_json() -> None:
    ids = {"trace_id": "ab" * 16, "span_id": "cd" * 8}
    text = TextFormatter("%(message)s")
    assert text.format(record("order 3 placed", **ids)) == (
        f"order 3 placed trace_id={'ab' * 16} span_id={'cd' * 8}"
    )
    assert text.format(record("order 3 placed")) == "order 3 placed"
    # a job's line says them already: not twice
    said = f"job 1 started trace_id={'ab' * 16} span_id={'cd' * 8}"
    assert text.format(record(said, **ids)) == said
    data = json.loads(JsonFormatter().format(record("order 3 placed", **ids)))
    assert (data["trace_id"], data["span_id"]) == (ids["trace_id"], ids["span_id"])
