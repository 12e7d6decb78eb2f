"""``current_job().succeed_with(func)`` on every backend: the application's writes commit in the
transaction that records the job's success, together or not at all, and only for the worker
that still holds the job."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from quart_jobs import Jobs, JobState, Transaction, current_job
from quart_jobs.backends import Backend
from quart_jobs.backends.base import Outcome
from quart_jobs.backends.effects import Effects
from quart_jobs.errors import JobsError
from quart_jobs.models import Lease

from ..conftest import Clock

#: Attempts that should raise inside their effects (by order id), consumed one by one.
fail_effects: dict[int, int] = {}


def mark_shipped(order_id: int) -> Callable[[Transaction], None]:
    """Effects: one row per order (a second write of the same order would be a primary-key
    error); those of :data:`fail_effects` raise after the write."""

    def run(tx: Transaction) -> None:
        tx.execute(f"INSERT INTO shipped (order_id) VALUES ({tx.placeholder})", (order_id,))
        if fail_effects.get(order_id, 0) > 0:
            fail_effects[order_id] -= 1
            raise RuntimeError(f"effects of order {order_id} refused")

    return run


async def ship(order_id: int) -> str:
    current_job().succeed_with(mark_shipped(order_id))
    return f"shipped {order_id}"


def ship_sync(order_id: int) -> str:
    current_job().succeed_with(mark_shipped(order_id))
    return f"shipped {order_id}"


async def ship_then_fail(order_id: int) -> None:
    current_job().succeed_with(mark_shipped(order_id))
    raise ValueError("the task failed after asking")


async def notify(order_id: int) -> int:
    return order_id


async def ship_and_notify(order_id: int) -> None:
    def run(tx: Transaction) -> None:
        assert current_job().id > 0  # the task's context
        tx.enqueue("notify", order_id)
        mark_shipped(order_id)(tx)

    current_job().succeed_with(run)


def make_jobs(backend: Backend, clock: Clock) -> Jobs:
    jobs = Jobs(backend, clock=clock)
    for func in (ship, ship_sync, ship_then_fail, notify, ship_and_notify):
        jobs.register(func, name=func.__name__)
    return jobs


async def setup(backend: Backend, clock: Clock) -> Jobs:
    jobs = make_jobs(backend, clock)

    def create(tx: Transaction) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS shipped (order_id INTEGER PRIMARY KEY)")
        tx.execute("DELETE FROM shipped")

    await jobs.transaction(create)
    return jobs


async def shipped(jobs: Jobs) -> list[int]:
    def read(tx: Transaction) -> list[int]:
        return sorted(int(r[0]) for r in tx.fetchall("SELECT order_id FROM shipped"))

    return await jobs.transaction(read)


@pytest.mark.parametrize("task", ["ship", "ship_sync"])
async def test_the_writes_commit_with_the_success(
    backend: Backend, clock: Clock, task: str
) -> None:
    jobs = await setup(backend, clock)
    ids = [(await jobs.enqueue(task, n)).id for n in (1, 2, 3)]
    drained = await jobs.drain(timeout=30)
    assert drained.succeeded == 3
    assert await shipped(jobs) == [1, 2, 3]
    for n, job_id in zip((1, 2, 3), ids, strict=True):
        job = await jobs.get(job_id)
        assert job.state is JobState.SUCCEEDED and job.result == f"shipped {n}"


async def test_effects_that_raise_keep_nothing_and_fail_the_attempt(
    backend: Backend, clock: Clock
) -> None:
    jobs = await setup(backend, clock)
    fail_effects[7] = 1
    fail_effects[8] = 5
    retried = await jobs.options(max_attempts=2).enqueue("ship", 7)
    failed = await jobs.options(max_attempts=1).enqueue("ship", 8)
    await jobs.enqueue("ship", 9)
    drained = await jobs.drain(timeout=30)
    assert drained.failed == 1 and drained.retried == 1 and drained.succeeded == 1
    job = await jobs.get(failed.id)
    assert job.state is JobState.FAILED
    assert job.error is not None and "effects of order 8 refused" in job.error
    assert job.result is None
    job = await jobs.get(retried.id)
    assert job.state is JobState.QUEUED and job.attempts == 1
    assert await shipped(jobs) == [9]  # neither failed attempt's row, the neighbour's kept
    clock.advance(3600)  # past the retry's backoff
    drained = await jobs.drain(timeout=30)
    assert drained.succeeded == 1
    assert (await jobs.get(retried.id)).state is JobState.SUCCEEDED
    assert await shipped(jobs) == [7, 9]


async def test_a_task_that_raises_drops_what_it_asked_to_commit(
    backend: Backend, clock: Clock
) -> None:
    jobs = await setup(backend, clock)
    job = await jobs.options(max_attempts=1).enqueue("ship_then_fail", 4)
    drained = await jobs.drain(timeout=30)
    assert drained.failed == 1
    assert (await jobs.get(job.id)).error == "ValueError: the task failed after asking"
    assert await shipped(jobs) == []


async def test_the_effects_may_enqueue_jobs_which_then_run(backend: Backend, clock: Clock) -> None:
    jobs = await setup(backend, clock)
    await jobs.enqueue("ship_and_notify", 5)
    drained = await jobs.drain(timeout=30)
    assert drained.succeeded == 2  # the job and the one its effects enqueued
    notified = await jobs.list(task="notify")
    assert [(j.args, j.state) for j in notified] == [((5,), JobState.SUCCEEDED)]
    assert await shipped(jobs) == [5]


async def test_a_lost_lease_writes_neither_the_success_nor_the_effects(
    backend: Backend, clock: Clock
) -> None:
    jobs = await setup(backend, clock)
    job = await jobs.enqueue("notify", 6)
    worker = f"w-{uuid.uuid4().hex[:6]}"
    (claimed,) = await backend.claim(worker, 1, clock(), 30.0)
    ran: list[str] = []

    def run(tx: object) -> None:
        ran.append("effects")

    stale = Outcome(
        Lease(job.id, "not-the-token"),
        JobState.SUCCEEDED,
        result="1",
        effects=Effects(run, lambda exc: Outcome(Lease(job.id, "x"), JobState.FAILED)),
    )
    done = await backend.claim_round([stale], worker, 0, clock(), 30.0)
    assert done.held == [False] and ran == []
    assert (await jobs.get(claimed.id)).state is JobState.RUNNING
    held = Outcome(
        Lease(claimed.id, claimed.lease_token or ""),
        JobState.SUCCEEDED,
        result="1",
        effects=Effects(run, lambda exc: Outcome(Lease(job.id, "x"), JobState.FAILED)),
    )
    done = await backend.claim_round([held], worker, 0, clock(), 30.0)
    assert done.held == [True] and ran == ["effects"]
    assert (await jobs.get(claimed.id)).state is JobState.SUCCEEDED


async def test_succeed_with_needs_a_job_a_worker_claimed(backend: Backend, clock: Clock) -> None:
    from quart_jobs.progress import RunningJob

    jobs = await setup(backend, clock)
    job = RunningJob.of(await jobs.enqueue("notify", 1), lambda p: None)
    with pytest.raises(JobsError, match="not claimed by a worker"):
        job.succeed_with(lambda tx: None)
