"""One trace from a request to the attempts of the job it enqueued, across real processes: a
Hypercorn web process enqueues under the request's server span; a separate
``quart-jobs worker`` process runs the job (its first attempt fails, the second succeeds). Each
process exports its own spans (``tests.acceptance.traced_app``); read together, they form
one trace: request → ``send default`` → ``process default`` (attempt 1), with the retry's
``process default`` linked to the enqueue. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from quart_jobs import Jobs, JobState

from .procs import BIN, ROOT, Service, free_port, process_env, wait_until

pytestmark = pytest.mark.acceptance

APP = "tests.acceptance.traced_app:app"


def spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def job_state(url: str, job_id: int) -> JobState:
    async def read() -> JobState:
        async with Jobs(url) as jobs:
            return (await jobs.get(job_id)).state

    return asyncio.run(read())


def test_a_request_s_trace_continues_into_the_job_s_attempts_in_another_process(
    tmp_path: Path, url: str
) -> None:
    web_spans, worker_spans = tmp_path / "web.jsonl", tmp_path / "worker.jsonl"
    port = free_port()
    web = Service(
        args=["--bind", f"127.0.0.1:{port}", APP],
        env=process_env(url, port, PYTHONPATH=str(ROOT), SPANS_FILE=str(web_spans)),
        log_path=tmp_path / "web.log",
        port=port,
        program=[str(BIN / "hypercorn")],
    )
    worker = Service(
        args=["--app", APP, "worker"],
        env=process_env(url, None, PYTHONPATH=str(ROOT), SPANS_FILE=str(worker_spans)),
        log_path=tmp_path / "worker.log",
    )
    try:
        web.start().wait_ready()
        worker.start()
        job_id = httpx.post(f"{web.url}/work", timeout=10).json()["job_id"]
        assert wait_until(lambda: job_state(url, job_id) is JobState.SUCCEEDED, 30), worker.output()
        assert wait_until(lambda: len(spans(worker_spans)) >= 2, 10), worker.output()
    finally:
        worker.stop()
        web.stop()

    (request,) = [s for s in spans(web_spans) if s["kind"] == "SERVER" and "POST" in s["name"]]
    (send,) = [s for s in spans(web_spans) if s["name"] == "send default"]
    first, second = [s for s in spans(worker_spans) if s["name"] == "process default"]
    print(json.dumps([request, send, first, second], indent=1))  # the trace, as the test saw it
    assert first["pid"] != send["pid"]
    assert send["kind"] == "PRODUCER" and send["parent_id"] == request["span_id"]
    assert send["trace_id"] == request["trace_id"]
    assert send["attributes"]["messaging.message.id"] == str(job_id)
    # The first attempt continues the request's trace, under the enqueue.
    assert first["kind"] == "CONSUMER"
    assert first["trace_id"] == request["trace_id"] and first["parent_id"] == send["span_id"]
    assert first["attributes"]["quart_jobs.attempt"] == 1
    assert first["status"] == "ERROR"
    # The retry is linked to the enqueue, in a trace of its own.
    assert second["parent_id"] is None and second["links"] == [send["span_id"]]
    assert second["attributes"]["quart_jobs.attempt"] == 2
    assert second["status"] == "UNSET"
    # The worker's job log lines say the attempt's trace.
    log = worker.output()
    assert f"job {job_id} started" in log
    assert f"trace_id={first['trace_id']} span_id={first['span_id']}" in log
