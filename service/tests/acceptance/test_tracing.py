"""Tracing of the order service, opted into by OpenTelemetry's environment variables: a
``POST /orders`` to a web process without workers, and an ``orders worker`` process that
fulfils it, both exporting to their output (``OTEL_TRACES_EXPORTER=console``) and logging
JSON. Their spans form one trace: the request, the order's enqueue, its processing; the
worker's job log lines carry that trace's ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from .procs import VIP_KEY, auth, place, running, wait_until

pytestmark = pytest.mark.acceptance


def json_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects in a process's output (spans, log lines), in order."""
    decoder = json.JSONDecoder()
    found, pos = [], text.find("{")
    while pos != -1:
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError:
            pos = text.find("{", pos + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        pos = text.find("{", end)
    return found


def spans(text: str) -> list[dict[str, Any]]:
    return [o for o in json_objects(text) if "context" in o and "kind" in o]


def test_a_post_orders_trace_continues_into_the_order_s_processing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/o.sqlite3"
    env = {"OTEL_TRACES_EXPORTER": "console", "LOG_FORMAT": "json", "OTEL_SERVICE_NAME": "t"}
    with (
        running(tmp_path, url, env={**env, "EMBEDDED_WORKERS": "0"}) as web,
        running(tmp_path, url, command="worker", name="worker", env=env) as worker,
        httpx.Client(base_url=web.url, timeout=10) as client,
    ):
        order = place(client, VIP_KEY, processing_seconds=0)

        def completed() -> bool:
            response = client.get(f"/orders/{order['id']}", headers=auth(VIP_KEY))
            return bool(response.json()["status"] == "completed")

        assert wait_until(completed, 30), worker.output()
    # Both processes stopped: their spans are exported.
    web_spans, worker_spans = spans(web.output()), spans(worker.output())
    (request,) = [s for s in web_spans if s["name"] == "POST /orders"]
    (send,) = [s for s in web_spans if s["name"] == "send default"]
    (process,) = [s for s in worker_spans if s["name"] == "process default"]
    trace_id = request["context"]["trace_id"]
    assert request["kind"] == "SpanKind.SERVER"
    assert send["kind"] == "SpanKind.PRODUCER" and send["context"]["trace_id"] == trace_id
    assert send["parent_id"] == request["context"]["span_id"]
    assert process["kind"] == "SpanKind.CONSUMER" and process["context"]["trace_id"] == trace_id
    assert process["parent_id"] == send["context"]["span_id"]
    assert (
        process["attributes"]["messaging.message.id"] == send["attributes"]["messaging.message.id"]
    )
    lines = [o for o in json_objects(worker.output()) if o.get("logger") == "quart_jobs.worker"]
    started = [o for o in lines if o.get("event") == "started"]
    assert started and started[0]["trace_id"] == trace_id.removeprefix("0x")
    assert started[0]["span_id"] == process["context"]["span_id"].removeprefix("0x")
    assert started[0]["job_id"] == int(send["attributes"]["messaging.message.id"])
