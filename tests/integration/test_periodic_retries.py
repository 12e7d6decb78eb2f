"""A moment whose enqueue fails is enqueued later, that same moment: the store refuses at the
moment's instant (a cut connection, a restart) and answers again after the next moment came. On
an injected clock, with the store's failures injected at the backend's enqueue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from quart_jobs import BackendUnavailable, Jobs
from quart_jobs.periodic import MAX_CATCH_UP, RUNNING_GAP

from ..conftest import Clock
from . import test_periodic

url = test_periodic.url  # the memory and SQLite stores
START = 1_800_000_000.0  # on the hour: a moment of every schedule below


async def every_second() -> None:
    return None


async def every_minute() -> None:
    return None


class FlakyStore:
    """Makes ``jobs._store.enqueue`` raise while ``down`` is set, as a store that is cut off."""

    def __init__(self, jobs: Jobs) -> None:
        self.down = False
        self.refused = 0
        real: Callable[..., Awaitable[Any]] = jobs._store.enqueue

        async def enqueue(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                self.refused += 1
                raise BackendUnavailable("the connection was terminated")
            return await real(*args, **kwargs)

        jobs._store.enqueue = enqueue  # type: ignore[method-assign]


def make_jobs(url: str, clock: Clock) -> Jobs:
    jobs = Jobs(url, clock=clock)
    jobs.periodic(every=1, name="every_second")(every_second)
    jobs.periodic("* * * * *", name="every_minute")(every_minute)
    return jobs


@pytest.fixture
async def jobs(url: str, clock: Clock) -> AsyncIterator[Jobs]:
    clock.now = START + 0.5
    j = make_jobs(url, clock)
    async with j:
        yield j


async def moments(jobs: Jobs) -> dict[str, list[int]]:
    """Each schedule's enqueued moments (seconds after START), oldest first."""
    found: dict[str, list[int]] = {}
    for job in await jobs.list(limit=10_000):
        assert job.key is not None
        _, name, moment = job.key.split(":")
        found.setdefault(name, []).append(int(moment) - int(START))
    return {name: sorted(values) for name, values in found.items()}


async def test_a_moment_refused_at_its_instant_is_enqueued_once_the_store_answers(
    jobs: Jobs, clock: Clock
) -> None:
    store = FlakyStore(jobs)
    assert await jobs.scheduler.tick() == 2  # second 0 and minute 0
    clock.now = START + 1.0  # the moment 1 s: the store is cut off right then
    store.down = True
    with pytest.raises(BackendUnavailable):
        await jobs.scheduler.tick()
    clock.now = START + 2.2  # the scheduler's retry, a second later: moment 2 s came meanwhile
    store.down = False
    assert await jobs.scheduler.tick() == 2
    assert await jobs.scheduler.tick() == 0
    assert await moments(jobs) == {"every_second": [0, 1, 2], "every_minute": [0]}
    assert store.refused == 1


async def test_every_moment_of_an_outage_is_enqueued_once_when_it_ends(
    jobs: Jobs, clock: Clock
) -> None:
    store = FlakyStore(jobs)
    await jobs.scheduler.tick()
    store.down = True
    for _ in range(5):  # the loop retries at most every MAX_SLEEP seconds while it fails
        clock.advance(RUNNING_GAP / 2)
        with pytest.raises(BackendUnavailable):
            await jobs.scheduler.tick()
    store.down = False
    clock.advance(1)
    await jobs.scheduler.tick()
    last = int(clock.now - START)
    found = await moments(jobs)
    assert found["every_minute"] == [0, 60, 120]
    assert found["every_second"] == [0, *range(last - MAX_CATCH_UP + 1, last + 1)]


async def test_the_first_round_failing_keeps_its_moment_owed(jobs: Jobs, clock: Clock) -> None:
    store = FlakyStore(jobs)
    store.down = True
    with pytest.raises(BackendUnavailable):
        await jobs.scheduler.tick()
    clock.advance(1.5)
    store.down = False
    await jobs.scheduler.tick()
    assert await moments(jobs) == {"every_second": [0, 1, 2], "every_minute": [0]}


async def test_after_a_time_when_nothing_ran_only_the_latest_moment_is_owed(
    jobs: Jobs, clock: Clock
) -> None:
    store = FlakyStore(jobs)
    await jobs.scheduler.tick()
    clock.advance(1)
    store.down = True
    with pytest.raises(BackendUnavailable):
        await jobs.scheduler.tick()
    clock.advance(3600)  # the process was suspended: no round for an hour
    store.down = False
    await jobs.scheduler.tick()
    assert await moments(jobs) == {"every_second": [0, 3601], "every_minute": [0, 3600]}


async def test_processes_cut_off_at_the_same_moment_enqueue_it_once(
    url: str, jobs: Jobs, clock: Clock
) -> None:
    if url.startswith("memory"):
        pytest.skip("a memory store is one process's; the SQL stores are shared")
    others = [make_jobs(url, clock) for _ in range(2)]
    for other in others:
        await other.open()
    try:
        everyone = [jobs, *others]
        stores = [FlakyStore(j) for j in everyone]
        await asyncio.gather(*(j.scheduler.tick() for j in everyone))
        clock.now = START + 1.0
        for store in stores:
            store.down = True
        failed = await asyncio.gather(
            *(j.scheduler.tick() for j in everyone), return_exceptions=True
        )
        assert all(isinstance(f, BackendUnavailable) for f in failed)
        clock.now = START + 2.0
        for store in stores:
            store.down = False
        created = await asyncio.gather(*(j.scheduler.tick() for j in everyone))
        assert sum(created) == 2  # moments 1 s and 2 s, once each, by whichever came first
        assert await moments(jobs) == {"every_second": [0, 1, 2], "every_minute": [0]}
    finally:
        for other in others:
            await other.close()
