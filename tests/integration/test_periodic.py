"""Periodic tasks end to end in one process: the scheduler's rounds on an injected clock, the
jobs they create, several schedulers sharing one store, and the loop started with a worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from quart_jobs import Jobs, JobState, WorkerSettings

from ..conftest import Clock

ran: list[float | None] = []


async def tick_task() -> None:
    ran.append(None)


async def stamped_task(timestamp: float) -> float:
    ran.append(timestamp)
    return timestamp


def make_jobs(url: str, clock: Clock) -> Jobs:
    jobs = Jobs(url, clock=clock, worker_settings=WorkerSettings(poll_interval=0.05))
    jobs.periodic(every=60, name="minutely")(tick_task)
    jobs.periodic("0 * * * *", name="hourly")(stamped_task)
    return jobs


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/jobs.sqlite3"


@pytest.fixture
async def jobs(url: str, clock: Clock) -> AsyncIterator[Jobs]:
    ran.clear()
    clock.now = 1_800_000_030.0  # 30 s past the hour 1_800_000_000
    j = make_jobs(url, clock)
    async with j:
        yield j


async def periodic_jobs(jobs: Jobs) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for job in reversed(await jobs.list(limit=1000)):
        assert job.key is not None
        _, name, moment = job.key.split(":")
        found.setdefault(name, []).append(float(moment))
    return found


async def test_a_first_round_enqueues_the_latest_moment_once(jobs: Jobs, clock: Clock) -> None:
    assert await jobs.scheduler.tick() == 2
    assert await jobs.scheduler.tick() == 0  # same moments: nothing new
    clock.advance(20)
    assert await jobs.scheduler.tick() == 0  # still within the same minute
    clock.advance(20)  # past the next minute
    assert await jobs.scheduler.tick() == 1
    found = await periodic_jobs(jobs)
    assert found == {"minutely": [1_800_000_000.0, 1_800_000_060.0], "hourly": [1_800_000_000.0]}


async def test_moments_missed_while_nothing_ran_are_enqueued_once(jobs: Jobs, clock: Clock) -> None:
    await jobs.scheduler.tick()
    clock.advance(3 * 3600)  # three hours, 180 minutes, with no process running
    assert await jobs.scheduler.tick() == 2
    found = await periodic_jobs(jobs)
    assert len(found["minutely"]) == 2 and len(found["hourly"]) == 2


async def test_schedulers_of_many_processes_enqueue_each_moment_once(
    url: str, jobs: Jobs, clock: Clock
) -> None:
    if url.startswith("memory"):
        pytest.skip("a memory store is one process's; the SQL stores are shared")
    others = [make_jobs(url, clock) for _ in range(4)]
    for other in others:
        await other.open()
    try:
        for _ in range(5):
            created = await asyncio.gather(*(j.scheduler.tick() for j in [jobs, *others]))
            assert sum(created) in (0, 1, 2)
            clock.advance(60)
        found = await periodic_jobs(jobs)
        assert len(found["minutely"]) == len(set(found["minutely"])) == 5
        assert found["hourly"] == [1_800_000_000.0]
    finally:
        for other in others:
            await other.close()


async def test_the_job_runs_and_receives_its_moment(jobs: Jobs, clock: Clock) -> None:
    await jobs.scheduler.tick()
    drained = await jobs.drain()
    assert drained.succeeded == 2
    assert sorted(ran, key=lambda x: x or 0) == [None, 1_800_000_000.0]
    (hourly,) = await jobs.list(task="hourly")
    assert hourly.kwargs == {"timestamp": 1_800_000_000.0}
    assert hourly.state is JobState.SUCCEEDED and hourly.result == 1_800_000_000.0


async def test_a_worker_keeps_the_schedule_and_stops_it_with_itself(jobs: Jobs) -> None:
    async with jobs.run_worker():
        assert jobs.scheduler.running
        async with asyncio.timeout(10):
            while len(ran) < 2:
                await asyncio.sleep(0.02)
    assert not jobs.scheduler.running
    assert {j.state for j in await jobs.list()} == {JobState.SUCCEEDED}


async def test_a_failing_round_is_logged_and_tried_again(
    jobs: Jobs, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0
    real = jobs.scheduler._enqueue_moment

    async def flaky(schedule: object, moment: float) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("store hiccup")
        return await real(schedule, moment)  # type: ignore[arg-type]

    jobs.scheduler._enqueue_moment = flaky  # type: ignore[assignment]
    jobs.scheduler.start()
    try:
        async with asyncio.timeout(10):
            while len(await jobs.list()) < 2:
                await asyncio.sleep(0.05)
    finally:
        await jobs.scheduler.stop()
    assert "a round failed" in caplog.text and "store hiccup" in caplog.text
