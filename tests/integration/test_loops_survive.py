"""The library's own loops survive what reaches them: an event hook that raises
``SystemExit`` or its own ``BaseException`` is logged and ignored (the worker's pump runs on and
the process with it), and the PostgreSQL LISTEN loop that meets an unexpected error logs it
with its traceback and listens again instead of ending silently."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
import pytest

from quart_jobs import Job, Jobs, JobState
from quart_jobs.backends.postgres.wakeup import Listener

from ..conftest import TEST_POSTGRES_URL, require_postgres
from . import tasks


class Poison(BaseException):
    """A ``BaseException`` of the application's own."""


@pytest.mark.parametrize("raised", [SystemExit(4), Poison("hook")], ids=lambda e: type(e).__name__)
async def test_an_event_hook_that_raises_a_base_exception_stops_nothing(
    jobs: Jobs, raised: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(event: str, job: Job, elapsed: float | None) -> None:
        if event == "succeeded" and job.args == ("first",):
            raise raised

    jobs.event_hooks.append(hook)
    async with jobs.run_worker() as worker:
        first = await jobs.enqueue(tasks.record, "first")
        assert (await jobs.wait(first.id, timeout=10)).state is JobState.SUCCEEDED
        second = await jobs.enqueue(tasks.record, "second")
        assert (await jobs.wait(second.id, timeout=10)).state is JobState.SUCCEEDED
        assert worker.running and worker.failure is None
    failed = [r for r in caplog.records if "job event hook failed" in r.getMessage()]
    assert failed and failed[0].exc_info is not None and failed[0].exc_info[1] is raised


@pytest.mark.postgres
async def test_the_listen_loop_logs_an_unexpected_error_and_listens_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_postgres()
    tries = 0

    async def connect() -> psycopg.AsyncConnection[Any]:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise RuntimeError("not a connection error")
        return await psycopg.AsyncConnection.connect(TEST_POSTGRES_URL, autocommit=True)

    listener = Listener(connect, "qj_test_listen_loop", "ready", max_backoff=0.05)
    woken = asyncio.Event()
    listener.add(woken.set)  # called once on every (re)connect
    try:
        await asyncio.wait_for(woken.wait(), 10)
    finally:
        await listener.stop()
    assert tries == 2
    failed = [
        r for r in caplog.records if r.levelno == logging.ERROR and "LISTEN" in r.getMessage()
    ]
    assert failed and failed[0].exc_info is not None
