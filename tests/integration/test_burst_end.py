"""A drain, and a burst worker, that run out of ready jobs end normally: nothing is logged at
ERROR and the worker has no failure (a failure is for a loop of the worker that broke)."""

from __future__ import annotations

import logging

import pytest

from quart_jobs import Jobs

from . import tasks


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_drain_logs_no_error(jobs: Jobs, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="quart_jobs")
    for n in range(3):
        await jobs.enqueue(tasks.record, n)
    drained = await jobs.drain(timeout=30)
    assert drained.succeeded == 3
    assert _errors(caplog) == []
    assert any("burst is done" in r.getMessage() for r in caplog.records)  # said at INFO


async def test_a_burst_worker_stops_by_itself_with_no_failure(
    jobs: Jobs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="quart_jobs")
    job = await jobs.enqueue(tasks.record, "once")
    worker = jobs.start_worker(burst=True)
    try:
        await worker.stopped.wait()  # it stops by itself once nothing is ready
    finally:
        await jobs.stop_worker(worker)
    assert worker.failure is None
    assert (await jobs.get(job.id)).state == "succeeded"
    assert _errors(caplog) == []
