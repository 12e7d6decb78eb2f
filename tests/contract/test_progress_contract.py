"""Progress a running task reports: written coalesced, fenced by the lease, readable with
``jobs.get``; on every backend, on the injected clock (heartbeats every few milliseconds of real
time, leases that never run out unless a test moves the clock)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from quart_jobs import Jobs, JobState, WorkerSettings, current_job
from quart_jobs.backends import Backend, Outcome
from quart_jobs.models import Lease, NewJob, Progress

from ..conftest import Clock

LEASE = 30.0
QUICK = WorkerSettings(
    concurrency=2,
    lease_seconds=LEASE,
    heartbeat_interval=0.01,
    poll_interval=0.01,
    shutdown_timeout=1.0,
)
PATIENCE = 10.0


class Steps:
    """What the tasks below wait for and say, fresh for each test."""

    def __init__(self) -> None:
        self.reported = asyncio.Event()
        self.finish = asyncio.Event()
        self.thread_reported = threading.Event()
        self.thread_finish = threading.Event()
        self.errors: list[str] = []


STEPS: list[Steps] = []


@pytest.fixture(autouse=True)
def steps() -> Iterator[Steps]:
    STEPS[:] = [Steps()]
    yield STEPS[0]
    STEPS.clear()


async def reports_many(calls: int) -> str:
    """Reports ``calls`` values in a tight loop, ending at 0.6, then waits to be let go."""
    job = current_job()
    for n in range(calls):
        job.progress(0.4 * n / calls, f"step {n}")
    job.progress(0.4)
    job.progress(0.6, "resized 6 of 10")
    STEPS[0].reported.set()
    await STEPS[0].finish.wait()
    return "done"


def reports_from_thread() -> None:
    """A sync task: reports from its worker thread, then waits to be let go."""
    job = current_job()
    job.progress(0.25, "a quarter")
    for bad in (1.5, -0.1, float("nan"), "half"):
        try:
            job.progress(bad)  # type: ignore[arg-type]
        except ValueError as exc:
            STEPS[0].errors.append(str(exc))
    STEPS[0].thread_reported.set()
    STEPS[0].thread_finish.wait(PATIENCE)


async def fails_after_progress() -> None:
    current_job().progress(0.5, "half way")
    raise RuntimeError("boom")


class CountingWrites:
    """Counts the progress values the worker hands to its store (heartbeats and outcomes)."""

    def __init__(self, backend: Backend) -> None:
        self.values = 0
        beat, claim_round = backend.heartbeat, backend.claim_round

        async def heartbeat(
            leases: Sequence[Lease],
            now: float,
            lease_seconds: float,
            progress: Sequence[tuple[Lease, Progress]] = (),
        ) -> Any:
            self.values += len(progress)
            return await beat(leases, now, lease_seconds, progress)

        async def finishing(outcomes: Sequence[Outcome], *args: Any, **kw: Any) -> Any:
            self.values += sum(o.progress is not None for o in outcomes)
            return await claim_round(outcomes, *args, **kw)

        backend.heartbeat = heartbeat  # type: ignore[method-assign]
        backend.claim_round = finishing  # type: ignore[method-assign]


def make_jobs(backend: Backend, clock: Clock) -> Jobs:
    jobs = Jobs(backend, clock=clock, worker_settings=QUICK, max_attempts=2)
    for func in (reports_many, reports_from_thread, fails_after_progress):
        jobs.register(func)
    return jobs


async def progress_of(jobs: Jobs, job_id: int, fraction: float) -> tuple[Any, ...]:
    async with asyncio.timeout(PATIENCE):
        while (job := await jobs.get(job_id)).progress != fraction:
            await asyncio.sleep(0.005)
    return job.progress, job.progress_message


async def test_the_last_reported_progress_is_stored_with_the_next_heartbeat_coalesced(
    backend: Backend, clock: Clock, steps: Steps
) -> None:
    writes = CountingWrites(backend)
    jobs = make_jobs(backend, clock)
    async with jobs.run_worker():
        job = await jobs.enqueue(reports_many, 1000)
        assert job.progress is None and job.progress_message is None
        await asyncio.wait_for(steps.reported.wait(), PATIENCE)
        assert await progress_of(jobs, job.id, 0.6) == (0.6, "resized 6 of 10")
        assert (await jobs.get(job.id)).state is JobState.RUNNING
        assert writes.values <= 2  # 1,002 calls: one value written (two if a beat fell mid-way)
        steps.finish.set()
        done = await jobs.wait(job.id, timeout=PATIENCE)
    assert done.state is JobState.SUCCEEDED
    assert (done.progress, done.progress_message) == (0.6, "resized 6 of 10")  # kept


async def test_a_sync_task_reports_from_its_thread_and_bad_values_are_refused(
    backend: Backend, clock: Clock, steps: Steps
) -> None:
    jobs = make_jobs(backend, clock)
    async with jobs.run_worker():
        job = await jobs.enqueue(reports_from_thread)
        assert await asyncio.to_thread(steps.thread_reported.wait, PATIENCE)
        assert await progress_of(jobs, job.id, 0.25) == (0.25, "a quarter")
        steps.thread_finish.set()
        await jobs.wait(job.id, timeout=PATIENCE)
    assert len(steps.errors) == 4
    assert all("progress must be" in e for e in steps.errors), steps.errors


async def test_a_retried_job_starts_its_next_attempt_without_progress(
    backend: Backend, clock: Clock
) -> None:
    jobs = make_jobs(backend, clock)
    async with jobs.run_worker():
        job = await jobs.enqueue(fails_after_progress)
        async with asyncio.timeout(PATIENCE):
            while (seen := await jobs.get(job.id)).attempts < 1 or seen.state is JobState.RUNNING:
                await asyncio.sleep(0.005)
    assert seen.state is JobState.QUEUED  # its retry waits for the backoff
    assert (seen.progress, seen.progress_message) == (None, None)


async def test_progress_is_written_only_while_the_lease_is_held(
    backend: Backend, clock: Clock
) -> None:
    (job_id,) = [r.job.id for r in await backend.enqueue([NewJob("t")], clock())]
    (first,) = await backend.claim("w-old", 1, clock(), LEASE)
    old = Lease(first.id, first.lease_token or "")
    await backend.heartbeat([old], clock(), LEASE, [(old, Progress(0.3, "thirty"))])
    stored = await backend.get(job_id)
    assert stored is not None and (stored.progress, stored.progress_message) == (0.3, "thirty")

    later = clock.advance(2 * LEASE)  # the old worker stopped answering; another takes the job
    assert await backend.recover_expired(later) == 1
    assert (await backend.get(job_id)).progress is None  # type: ignore[union-attr]
    (second,) = await backend.claim("w-new", 1, later, LEASE)
    new = Lease(second.id, second.lease_token or "")
    await backend.heartbeat([new], later, LEASE, [(new, Progress(0.1))])
    beats = await backend.heartbeat([old], later, LEASE, [(old, Progress(0.9, "stale"))])
    assert not beats[0].held
    stale = Outcome(old, JobState.SUCCEEDED, result="1", progress=Progress(1.0, "stale"))
    assert await backend.finish([stale], later) == [False]
    stored = await backend.get(job_id)
    assert stored is not None and (stored.progress, stored.progress_message) == (0.1, None)

    ended = Outcome(new, JobState.SUCCEEDED, result="1", progress=Progress(0.8, "last"))
    assert await backend.finish([ended], later) == [True]
    stored = await backend.get(job_id)
    assert stored is not None and stored.state is JobState.SUCCEEDED
    assert (stored.progress, stored.progress_message) == (0.8, "last")


def test_progress_values_are_checked() -> None:
    assert Progress.of(1, "x" * 500) == Progress(1.0, "x" * 200)
    for bad in (1.01, -1, float("inf"), True, None):
        with pytest.raises(ValueError, match="progress must be"):
            Progress.of(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="message must be a string"):
        Progress.of(0.5, 3)  # type: ignore[arg-type]
