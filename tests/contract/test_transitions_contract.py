"""The table of state transitions (``models.TRANSITIONS``), driven entry by entry on every
backend: the memory backend applies the table, SQLite and PostgreSQL must agree with it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from quart_jobs.backends import Backend, Outcome
from quart_jobs.models import TRANSITIONS, Job, JobEvent, JobState, Lease, NewJob

from ..conftest import Clock

LEASE = 30.0


async def _queued(backend: Backend, clock: Clock, max_attempts: int) -> Job:
    (result,) = await backend.enqueue([NewJob(task="t", max_attempts=max_attempts)], clock())
    return result.job


async def _running(backend: Backend, clock: Clock, max_attempts: int) -> Job:
    job = await _queued(backend, clock, max_attempts)
    (running,) = await backend.claim("w1", 1, clock(), LEASE)
    assert running.id == job.id
    return running


async def _end(backend: Backend, clock: Clock, job: Job, outcome_state: JobState) -> None:
    lease = Lease(job.id, job.lease_token or "")
    assert await backend.finish([Outcome(lease, outcome_state)], clock()) == [True]


async def _in_state(backend: Backend, clock: Clock, state: JobState, max_attempts: int) -> Job:
    """A job in ``state`` (a running one carries its lease)."""
    if state is JobState.QUEUED:
        return await _queued(backend, clock, max_attempts)
    if state is JobState.WAITING:  # after a parent of its own, still queued
        parent = await _queued(backend, clock, max_attempts)
        (result,) = await backend.enqueue_after([NewJob(task="t")], [parent.id], clock())
        return result.job
    job = await _running(backend, clock, max_attempts)
    if state is not JobState.RUNNING:
        await _end(backend, clock, job, state)
    return job


Driver = Callable[[Backend, Clock, Job], Awaitable[None]]


async def _claim(backend: Backend, clock: Clock, job: Job) -> None:
    assert [j.id for j in await backend.claim("w2", 1, clock(), LEASE)] == [job.id]


def _finishing(state: JobState, *, later: bool = False, refund: bool = False) -> Driver:
    async def drive(backend: Backend, clock: Clock, job: Job) -> None:
        lease = Lease(job.id, job.lease_token or "")
        outcome = Outcome(
            lease, state, error="boom", run_at=clock() + 10 if later else None, refund=refund
        )
        assert await backend.finish([outcome], clock()) == [True]

    return drive


async def _cancel(backend: Backend, clock: Clock, job: Job) -> None:
    now = await backend.get(job.id)
    if (
        now is not None and now.state is JobState.RUNNING
    ):  # a running job ends cancelled when its worker says so
        await _finishing(JobState.CANCELLED)(backend, clock, job)
    else:
        await backend.cancel(job.id, clock())


async def _expire(backend: Backend, clock: Clock, job: Job) -> None:
    clock.advance(LEASE + 1)
    assert await backend.recover_expired(clock()) == 1


async def _retry(backend: Backend, clock: Clock, job: Job) -> None:
    await backend.retry(job.id, clock())


def _parent_ends(state: JobState) -> Driver:
    """The waiting job's parent runs and ends in ``state``."""

    async def drive(backend: Backend, clock: Clock, job: Job) -> None:
        (parent,) = (await backend.dependencies(job.id)).parents
        (running,) = await backend.claim("w2", 1, clock(), LEASE)
        assert running.id == parent.id
        await _end(backend, clock, running, state)

    return drive


DRIVERS: dict[JobEvent, tuple[Driver, int]] = {  # how to cause the event, and max_attempts
    JobEvent.STARTED: (_claim, 2),
    JobEvent.SUCCEEDED: (_finishing(JobState.SUCCEEDED), 2),
    JobEvent.FAILED: (_finishing(JobState.FAILED), 1),
    JobEvent.RETRIED: (_finishing(JobState.FAILED, later=True), 2),
    JobEvent.REQUEUED: (_finishing(JobState.QUEUED, refund=True), 2),
    JobEvent.CANCELLED: (_cancel, 2),
    JobEvent.LEASE_EXPIRED: (_expire, 2),
    JobEvent.LEASE_EXPIRED_LAST: (_expire, 1),
    JobEvent.RETRIED_BY_OPERATOR: (_retry, 2),
    JobEvent.DEPENDENCIES_MET: (_parent_ends(JobState.SUCCEEDED), 1),
    JobEvent.DEPENDENCY_FAILED: (_parent_ends(JobState.FAILED), 1),
}


def test_every_event_has_a_transition_and_a_driver() -> None:
    moves = set(JobEvent) - {JobEvent.ENQUEUED}  # a job's creation: it has no state before
    assert {event for _, event in TRANSITIONS} == moves == set(DRIVERS)


@pytest.mark.parametrize(
    ("start", "event", "end"),
    [(start, event, end) for (start, event), end in TRANSITIONS.items()],
    ids=[f"{start}-{event}" for start, event in TRANSITIONS],
)
async def test_each_transition_of_the_table_holds(
    backend: Backend, clock: Clock, start: JobState, event: JobEvent, end: JobState
) -> None:
    drive, max_attempts = DRIVERS[event]
    job = await _in_state(backend, clock, start, max_attempts)
    assert (await backend.get(job.id)).state is start  # type: ignore[union-attr]
    await drive(backend, clock, job)
    after = await backend.get(job.id)
    assert after is not None and after.state is end
    if end is JobState.QUEUED:
        assert (after.worker, after.lease_token, after.finished_at) == (None, None, None)
    if end.finished:
        assert after.finished_at is not None and after.lease_token is None


@pytest.mark.parametrize(
    ("start", "event"),
    [
        (state, event)
        for event in (JobEvent.CANCELLED, JobEvent.RETRIED_BY_OPERATOR)
        for state in JobState
        if (state, event) not in TRANSITIONS and state is not JobState.RUNNING
    ],
)
async def test_an_operator_event_the_table_lacks_changes_nothing(
    backend: Backend, clock: Clock, start: JobState, event: JobEvent
) -> None:
    job = await _in_state(backend, clock, start, 1)
    before = await backend.get(job.id)
    await DRIVERS[event][0](backend, clock, job)
    assert await backend.get(job.id) == before


async def test_cancelling_a_running_job_only_asks_its_worker(
    backend: Backend, clock: Clock
) -> None:
    job = await _running(backend, clock, 2)
    await backend.cancel(job.id, clock())
    after = await backend.get(job.id)
    assert after is not None and after.state is JobState.RUNNING and after.cancel_requested
    await backend.retry(job.id, clock())  # not a transition the table has: nothing changes
    assert await backend.get(job.id) == after
