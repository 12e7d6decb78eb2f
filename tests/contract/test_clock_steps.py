"""A backward step of the callers' clock, in every backend: queued jobs stay due, a delayed job
comes due at most ``step`` seconds after its ``run_at``, leases do not outlive their time."""

from __future__ import annotations

from pathlib import Path

from quart_jobs.backends import Backend
from quart_jobs.backends.sqlite.backend import SQLiteBackend
from quart_jobs.models import NewJob

from ..conftest import Clock

LEASE = 30.0
STEP = 3600.0


async def test_a_queued_job_stays_claimable_after_the_clock_steps_back(
    backend: Backend, clock: Clock
) -> None:
    (queued,) = await backend.enqueue([NewJob(task="t")], clock())
    clock.advance(-STEP)
    await backend.recover_expired(clock())  # what an idle worker does every few seconds
    next_at = await backend.next_run_at()
    assert next_at is not None and next_at <= clock()  # a worker sees it ready on its clock
    (claimed,) = await backend.claim("w1", 1, clock(), LEASE)
    assert claimed.id == queued.job.id


async def test_a_delayed_job_comes_due_at_most_the_step_after_its_run_at(
    backend: Backend, clock: Clock
) -> None:
    start = clock()
    await backend.enqueue([NewJob(task="t", run_at=start + 60)], start)
    clock.advance(10)
    assert await backend.claim("w1", 1, clock(), LEASE) == []
    clock.advance(-STEP)  # the step, 10 s after the enqueue
    clock.advance(STEP + 49)  # 1 s before run_at + STEP (real time)
    assert await backend.claim("w1", 1, clock(), LEASE) == []
    clock.advance(1)  # run_at + STEP: due
    assert len(await backend.claim("w1", 1, clock(), LEASE)) == 1


async def test_a_dead_workers_lease_expires_at_most_the_step_late(
    backend: Backend, clock: Clock
) -> None:
    await backend.enqueue([NewJob(task="t")], clock())
    (job,) = await backend.claim("dead", 1, clock(), LEASE)
    clock.advance(-STEP)
    clock.advance(STEP + LEASE + 1)  # its lease ended a second ago (real time minus the step)
    assert await backend.recover_expired(clock()) == 1
    (again,) = await backend.claim("w2", 1, clock(), LEASE)
    assert (again.id, again.attempts) == (job.id, 2)


async def test_sqlite_after_a_restart_behind_the_step_the_queue_is_still_due(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "jobs.sqlite3"
    first = SQLiteBackend(path, synchronous="NORMAL")
    await first.open()
    (queued,) = await first.enqueue([NewJob(task="t")], clock())
    await first.close()
    clock.advance(-STEP)  # the machine's clock is corrected while the process is down
    second = SQLiteBackend(path, synchronous="NORMAL")
    await second.open()
    try:
        await second.recover_expired(clock())
        next_at = await second.next_run_at()
        assert next_at is not None and next_at <= clock()
        (claimed,) = await second.claim("w1", 1, clock(), LEASE)
        assert claimed.id == queued.job.id
        assert claimed.started_at == queued.job.enqueued_at  # the clamped time, not the wall's
    finally:
        await second.close()
