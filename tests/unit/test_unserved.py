"""A worker warns about ready jobs of a task it does not know, once they waited a full check."""

from __future__ import annotations

import logging

import pytest

from quart_jobs.backends.memory import MemoryBackend
from quart_jobs.models import NewJob
from quart_jobs.unserved import UnservedWatch


async def test_jobs_of_an_unknown_task_are_reported_at_the_second_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = MemoryBackend()
    await backend.enqueue([NewJob("mine"), NewJob("theirs"), NewJob("theirs")], 0.0)
    await backend.enqueue([NewJob("elsewhere", queue="reports")], 0.0)
    watch = UnservedWatch(["mine"], ["default"])
    with caplog.at_level(logging.WARNING, logger="quart_jobs.worker"):
        assert await watch.check(backend, 0.0, "w1") == []  # just seen: may be served soon
        assert await watch.check(backend, 60.0, "w1") == [("default", "theirs", 2)]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "'theirs'" in record.getMessage() and "does not have that task" in record.getMessage()
