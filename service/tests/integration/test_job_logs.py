"""The order service's job events as JSON log lines (its ``JsonFormatter``)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from quart import Quart

from order_service.app import create_app
from order_service.logs import JsonFormatter
from quart_jobs import JobState, get_jobs

from .conftest import order_settings

REGULAR = {"Authorization": "Bearer demo-regular-key"}
ORDER = {"items": [{"sku": "A-1", "quantity": 1}], "processing_seconds": 0}
TASK = "orders.process"


async def wait_state(app: Quart, job_id: int, state: JobState) -> None:
    jobs = get_jobs(app)
    async with asyncio.timeout(10):
        while (await jobs.get(job_id)).state is not state:
            await asyncio.sleep(0.02)


async def test_each_job_event_is_one_log_line_with_its_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="quart_jobs.worker")
    app = create_app(order_settings(tmp_path, job_max_attempts=2))
    async with app.test_app():
        client = app.test_client()
        response = await client.post("/orders", json={**ORDER, "fail_times": 5}, headers=REGULAR)
        assert response.status_code == 202
        doomed = int((await response.get_json())["id"])
        await wait_state(app, doomed, JobState.FAILED)
    lines = [
        json.loads(JsonFormatter().format(r))
        for r in caplog.records
        if getattr(r, "job_id", None) == doomed
    ]
    assert [line["event"] for line in lines] == ["started", "retried", "started", "failed"]
    for line in lines:
        assert line["task"] == TASK and line["tier"] == "regular" and line["worker"]
    assert [line["attempt"] for line in lines] == [1, 1, 2, 2]
    assert "duration" not in lines[0] and lines[1]["duration"] >= 0
    assert lines[3]["error"].startswith("SimulatedFailure")
