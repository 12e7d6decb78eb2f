"""W1's shape, shared by every system it measures: the sizes and the three phases of an asyncio
system (see :mod:`bench.workloads.throughput`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from ..common import Countdown, Phases

QJ_CONCURRENCY = 32  # what a user would pick for no-op / I/O-bound async jobs
PEER_ASYNC_CONCURRENCY = QJ_CONCURRENCY
#: The PostgreSQL peers' own shape (pgqueuer, oban-py and quart-jobs beside them).
PG_PEER_CONCURRENCY = 10
TIMEOUT = 300.0
VIP_EVERY = 2  # every second job is VIP


def database_of(url: str) -> str:
    """The database name at the end of a PostgreSQL URL."""
    return url.rsplit("/", 1)[1].split("?", 1)[0]


async def async_phases(
    n: int,
    done: list[Countdown],
    produce: Callable[[], Awaitable[None]],
    worker: contextlib.AbstractAsyncContextManager[Any],
) -> Phases:
    """The three phases of an asyncio system: ``produce`` N jobs with no worker (enqueue), run
    ``worker`` against that backlog (drain), then produce N more while it runs (e2e). Jobs
    report to ``done[0]``, which is renewed for each counted phase."""
    t0 = time.perf_counter()
    await produce()
    enqueue = time.perf_counter() - t0

    done[:] = [Countdown(n)]
    t0 = time.perf_counter()
    async with worker:
        await done[0].wait(TIMEOUT)
        drain = time.perf_counter() - t0

        done[:] = [Countdown(n)]
        t0 = time.perf_counter()
        await produce()
        await done[0].wait(TIMEOUT)
        e2e = time.perf_counter() - t0
    return Phases(enqueue, drain, e2e)


@contextlib.asynccontextmanager
async def running(
    start: Callable[[], Coroutine[Any, Any, Any]],
    stop: Callable[[], Awaitable[Any]] | None = None,
) -> AsyncIterator[None]:
    """``start()`` as a task for the duration; then ``stop()`` (if given) and cancel it."""
    task = asyncio.create_task(start())
    try:
        yield
    finally:
        if stop is not None:
            await stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def unlink_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
