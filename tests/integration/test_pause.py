"""Pausing a queue through :class:`Jobs`: a drain (and a burst worker) treats its jobs as not
ready; a resume lets them run; stats tell which queues are paused and what waits in them. And
an idle worker whose store holds ready jobs it may not take (a paused queue, a task it does
not have) sleeps between claims instead of claiming in a loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from quart_jobs import Jobs, JobState
from quart_jobs.backends import Backend
from quart_jobs.claim_loop import MIN_IDLE_WAIT
from quart_jobs.errors import ConfigurationError
from quart_jobs.models import NewJob
from quart_jobs.worker import Worker

from ..conftest import BACKENDS
from . import tasks
from .conftest import FAST


async def test_a_drain_runs_everything_but_the_paused_queue_then_resume_lets_it_run(
    jobs: Jobs,
) -> None:
    assert await jobs.pause("emails") is True
    emails = [await jobs.options(queue="emails").enqueue(tasks.record, n) for n in range(2)]
    other = await jobs.enqueue(tasks.record, "other")
    drained = await jobs.drain(timeout=30)
    assert drained.succeeded == 1
    assert (await jobs.get(other.id)).state is JobState.SUCCEEDED
    assert [(await jobs.get(j.id)).state for j in emails] == [JobState.QUEUED] * 2
    stats = await jobs.stats()
    assert set(stats.paused) == {"emails"} == await jobs.paused()
    assert stats.queues[("emails", JobState.QUEUED)] == 2  # what waits in it
    assert await jobs.resume("emails") is True
    assert (await jobs.drain(timeout=30)).succeeded == 2
    assert await jobs.paused() == set()
    assert (await jobs.stats()).paused == {}


async def test_a_burst_worker_ends_when_only_paused_jobs_wait(jobs: Jobs) -> None:
    await jobs.pause("emails")
    waiting = await jobs.options(queue="emails").enqueue(tasks.record, 1)
    worker = jobs.start_worker(burst=True)
    try:
        await asyncio.wait_for(worker.stopped.wait(), timeout=30)
    finally:
        await jobs.stop_worker(worker)
    assert worker.failure is None
    assert (await jobs.get(waiting.id)).attempts == 0


async def test_a_resume_wakes_an_idle_worker_of_this_process(jobs: Jobs) -> None:
    await jobs.pause("emails")
    job = await jobs.options(queue="emails").enqueue(tasks.record, "later")
    async with jobs.run_worker(poll_interval=60.0):  # only a wake-up can start it soon
        await asyncio.sleep(0)
        await jobs.resume("emails")
        done = await jobs.wait(job.id, timeout=30)
    assert done.state is JobState.SUCCEEDED


@pytest.mark.parametrize("name", ["", " ", "x" * 101])
async def test_a_bad_queue_name_is_refused_with_the_rule(jobs: Jobs, name: str) -> None:
    with pytest.raises(ConfigurationError, match="1 to 100 characters"):
        await jobs.pause(name)


class Watch:
    """What a worker asks of the store and how long it asks to sleep, in order."""

    def __init__(self, worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log: list[tuple[str, float]] = []
        self.sleeps = asyncio.Event()
        claim = worker.backend.claim_round
        sleep = worker._claims._sleep

        async def counted_claim(*args: Any, **kwargs: Any) -> Any:
            self.log.append(("claim", 0.0))
            return await claim(*args, **kwargs)

        async def counted_sleep(seconds: float) -> bool:
            self.log.append(("sleep", seconds))
            if sum(1 for what, _ in self.log if what == "sleep") >= 6:
                self.sleeps.set()
            return await sleep(seconds)

        monkeypatch.setattr(worker.backend, "claim_round", counted_claim)
        monkeypatch.setattr(worker._claims, "_sleep", counted_sleep)

    def claims(self) -> int:
        return sum(1 for what, _ in self.log if what == "claim")

    def slept_between_claims(self) -> list[float]:
        """The seconds asked for between each claim and the next one."""
        gaps: list[float] = []
        for what, seconds in self.log:
            if what == "claim":
                gaps.append(0.0)
            elif gaps:
                gaps[-1] += seconds
        return gaps[:-1]


@pytest.fixture(params=["memory", "sqlite"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Jobs, Backend]]:
    """Jobs on a backend this test holds too (to enqueue a task that no worker here has)."""
    backend = BACKENDS[request.param](tmp_path)
    jobs = Jobs(backend, worker_settings=FAST)
    tasks.register_all(jobs)
    async with jobs:
        yield jobs, backend


async def _idle_worker(jobs: Jobs, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Watch:
    worker = jobs.start_worker(poll_interval=0.2, **settings)
    watch = Watch(worker, monkeypatch)  # before the worker's first step: nothing runs in between
    try:
        await asyncio.wait_for(watch.sleeps.wait(), timeout=30)
    finally:
        await jobs.stop_worker(worker)
    return watch


@pytest.mark.parametrize("held", ["paused", "another queue"])
async def test_an_idle_worker_only_looks_while_the_ready_jobs_are_not_for_it(
    store: tuple[Jobs, Backend], monkeypatch: pytest.MonkeyPatch, held: str
) -> None:
    jobs, _ = store
    if held == "paused":
        await jobs.pause("emails")
    for n in range(3):
        await jobs.options(queue="emails").enqueue(tasks.record, n)
    watch = await _idle_worker(jobs, monkeypatch, queues=("default",) if held != "paused" else None)
    # Its first claim found nothing; the store then says nothing is ready for it: it only
    # looks now and then (a read), and never takes the write lock again to claim nothing.
    assert watch.claims() == 1
    assert [s for what, s in watch.log if what == "sleep"][1:] == [0.2] * 5


async def test_an_idle_worker_waits_between_claims_while_a_task_it_lacks_is_ready(
    store: tuple[Jobs, Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs, backend = store
    # A job of a task no worker here has: ready, but no claim of this worker takes it.
    await backend.enqueue([NewJob(task="elsewhere.only")], jobs.clock())
    watch = await _idle_worker(jobs, monkeypatch)
    gaps = watch.slept_between_claims()
    assert len(gaps) >= 2
    assert all(gap >= MIN_IDLE_WAIT for gap in gaps), watch.log
