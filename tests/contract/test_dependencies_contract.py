"""Jobs that depend on jobs, on every backend: a dependant waits (``waiting``, not claimable)
until its parents end; it is queued in the transaction that records its last parent's
success, whichever path records it; a parent that fails or is cancelled cancels its
dependants transitively, naming the cause, except those enqueued to run whatever happens."""

from __future__ import annotations

import json

import pytest

from quart_jobs.backends import Backend, Outcome
from quart_jobs.errors import UnknownDependency
from quart_jobs.models import Job, JobState, Lease, NewJob, Why

from ..conftest import Clock

LEASE = 30.0


async def _enqueue(backend: Backend, clock: Clock, n: int = 1, **kw: object) -> list[Job]:
    results = await backend.enqueue([NewJob(task="t", **kw) for _ in range(n)], clock())  # type: ignore[arg-type]
    return [r.job for r in results]


async def _after(
    backend: Backend, clock: Clock, parents: list[int], *, run_always: bool = False, **kw: object
) -> Job:
    (result,) = await backend.enqueue_after(
        [NewJob(task="child", **kw)],
        parents,
        clock(),
        run_always=run_always,  # type: ignore[arg-type]
    )
    return result.job


async def _claim_all(backend: Backend, clock: Clock) -> list[Job]:
    return await backend.claim("w", 100, clock(), LEASE)


async def _end(
    backend: Backend, clock: Clock, jobs: list[Job], state: JobState, **kw: object
) -> None:
    outcomes = [
        Outcome(Lease(j.id, j.lease_token or ""), state, **kw)  # type: ignore[arg-type]
        for j in jobs
    ]
    assert await backend.finish(outcomes, clock()) == [True] * len(jobs)


async def _state(backend: Backend, job_id: int) -> JobState:
    job = await backend.get(job_id)
    assert job is not None
    return job.state


async def test_a_dependant_waits_and_is_not_claimed(backend: Backend, clock: Clock) -> None:
    (parent,) = await _enqueue(backend, clock)
    child = await _after(backend, clock, [parent.id])
    assert child.state is JobState.WAITING
    assert await _state(backend, child.id) is JobState.WAITING
    assert [j.id for j in await _claim_all(backend, clock)] == [parent.id]
    assert await _claim_all(backend, clock) == []


async def test_a_dependant_starts_only_after_every_parent_succeeded(
    backend: Backend, clock: Clock
) -> None:
    a, b = await _enqueue(backend, clock, 2)
    child = await _after(backend, clock, [b.id, a.id])
    running = await _claim_all(backend, clock)
    assert {j.id for j in running} == {a.id, b.id}
    await _end(backend, clock, [j for j in running if j.id == a.id], JobState.SUCCEEDED, result="1")
    assert await _state(backend, child.id) is JobState.WAITING
    clock.advance(1)
    # the last success and the claim in one call: the child is claimed in that same call
    rest = [j for j in running if j.id == b.id]
    outcomes = [
        Outcome(Lease(rest[0].id, rest[0].lease_token or ""), JobState.SUCCEEDED, result="2")
    ]
    held, claimed = await backend.finish_and_claim(outcomes, "w", 10, clock(), LEASE)
    assert held == [True] and [j.id for j in claimed] == [child.id]
    links = await backend.dependencies(child.id)
    assert [p.id for p in links.parents] == [b.id, a.id]  # the order given
    assert [p.result for p in links.parents] == [2, 1]
    assert [c.id for c in (await backend.dependencies(a.id)).dependants] == [child.id]


async def test_a_batch_of_parent_successes_resolves_each_edge_once(
    backend: Backend, clock: Clock
) -> None:
    parents = await _enqueue(backend, clock, 10)
    child = await _after(backend, clock, [p.id for p in parents])
    running = await _claim_all(backend, clock)
    await _end(backend, clock, running[:9], JobState.SUCCEEDED)
    assert await _state(backend, child.id) is JobState.WAITING
    await _end(backend, clock, running[9:], JobState.SUCCEEDED)
    assert await _state(backend, child.id) is JobState.QUEUED
    assert [j.id for j in await _claim_all(backend, clock)] == [child.id]


async def test_a_failed_parent_cancels_its_dependants_transitively_naming_the_cause(
    backend: Backend, clock: Clock
) -> None:
    (head,) = await _enqueue(backend, clock, max_attempts=1)
    second = await _after(backend, clock, [head.id])
    third = await _after(backend, clock, [second.id])
    fourth = await _after(backend, clock, [third.id])
    cleanup = await _after(backend, clock, [third.id], run_always=True)
    (running,) = await _claim_all(backend, clock)
    await _end(backend, clock, [running], JobState.FAILED, error="ValueError: x")
    for job, cause in ((second, head.id), (third, second.id), (fourth, third.id)):
        after = await backend.get(job.id)
        assert after is not None and after.state is JobState.CANCELLED
        assert after.error == f"dependency {cause} {'failed' if cause == head.id else 'cancelled'}"
        assert after.finished_at is not None and after.why is Why.DEPENDENCY
    assert await _state(backend, cleanup.id) is JobState.QUEUED  # it runs whatever happens
    assert [j.id for j in await _claim_all(backend, clock)] == [cleanup.id]


async def test_a_retry_with_attempts_left_resolves_nothing(backend: Backend, clock: Clock) -> None:
    (parent,) = await _enqueue(backend, clock, max_attempts=2)
    child = await _after(backend, clock, [parent.id])
    (running,) = await _claim_all(backend, clock)
    await _end(backend, clock, [running], JobState.FAILED, error="E: x", run_at=clock() + 5)
    assert await _state(backend, child.id) is JobState.WAITING


async def test_every_path_that_ends_a_parent_resolves(backend: Backend, clock: Clock) -> None:
    # operator cancel of a queued parent
    (queued,) = await _enqueue(backend, clock)
    child = await _after(backend, clock, [queued.id])
    await backend.cancel(queued.id, clock())
    assert (await backend.get(child.id)).error == f"dependency {queued.id} cancelled"  # type: ignore[union-attr]
    # the application's transaction cancels a parent
    (other,) = await _enqueue(backend, clock)
    child2 = await _after(backend, clock, [other.id])
    await backend.run_transaction(lambda tx: tx.cancel(other.id), clock())
    assert await _state(backend, child2.id) is JobState.CANCELLED
    # a lease that expires on the last attempt
    await _claim_all(backend, clock)  # nothing else is queued
    (last,) = await _enqueue(backend, clock, max_attempts=1)
    child3 = await _after(backend, clock, [last.id])
    await _claim_all(backend, clock)
    clock.advance(LEASE + 1)
    assert await backend.recover_expired(clock()) == 1
    assert (await backend.get(child3.id)).error == f"dependency {last.id} failed"  # type: ignore[union-attr]
    # cancelling a waiting job cancels its own dependants
    (top,) = await _enqueue(backend, clock)
    middle = await _after(backend, clock, [top.id])
    bottom = await _after(backend, clock, [middle.id])
    await backend.cancel(middle.id, clock())
    assert await _state(backend, middle.id) is JobState.CANCELLED
    assert (await backend.get(bottom.id)).error == f"dependency {middle.id} cancelled"  # type: ignore[union-attr]
    assert await _state(backend, top.id) is JobState.QUEUED


async def test_parents_that_ended_before_the_enqueue_count(backend: Backend, clock: Clock) -> None:
    ok, bad = await _enqueue(backend, clock, 2, max_attempts=1)
    running = {j.id: j for j in await _claim_all(backend, clock)}
    await _end(backend, clock, [running[ok.id]], JobState.SUCCEEDED)
    await _end(backend, clock, [running[bad.id]], JobState.FAILED, error="E: x")
    ready = await _after(backend, clock, [ok.id])
    assert ready.state is JobState.QUEUED
    doomed = await _after(backend, clock, [ok.id, bad.id])
    assert doomed.state is JobState.CANCELLED and doomed.error == f"dependency {bad.id} failed"
    anyway = await _after(backend, clock, [bad.id], run_always=True)
    assert anyway.state is JobState.QUEUED
    assert {j.id for j in await _claim_all(backend, clock)} == {ready.id, anyway.id}


async def test_an_unknown_parent_is_refused_and_nothing_is_written(
    backend: Backend, clock: Clock
) -> None:
    (parent,) = await _enqueue(backend, clock)
    with pytest.raises(UnknownDependency, match=r"job 999999 does not exist"):
        await backend.enqueue_after(
            [NewJob(task="a"), NewJob(task="b")], [parent.id, 999999], clock()
        )
    assert [j.id for j in await _claim_all(backend, clock)] == [parent.id]
    assert (await backend.dependencies(parent.id)).dependants == ()
    assert await backend.get(parent.id + 1) is None


async def test_a_group_callback_is_queued_once_after_the_last_member_with_counts(
    backend: Backend, clock: Clock
) -> None:
    members = await _enqueue(backend, clock, 100, max_attempts=1)
    callback = await _after(backend, clock, [m.id for m in members], run_always=True)
    running = await _claim_all(backend, clock)
    assert len(running) == 100
    await _end(backend, clock, running[:97], JobState.SUCCEEDED)
    await _end(backend, clock, running[97:99], JobState.FAILED, error="E: x")
    assert await _state(backend, callback.id) is JobState.WAITING
    await _end(backend, clock, running[99:], JobState.FAILED, error="E: x")
    assert await _state(backend, callback.id) is JobState.QUEUED
    # the last member retried by an operator and ending again does not count twice
    (started,) = await _claim_all(backend, clock)
    assert started.id == callback.id and started.attempts == 1
    await backend.retry(running[99].id, clock())
    (again,) = await _claim_all(backend, clock)
    await _end(backend, clock, [again], JobState.SUCCEEDED)
    assert await _claim_all(backend, clock) == []
    assert await _state(backend, callback.id) is JobState.RUNNING
    counts = (await backend.dependencies(callback.id)).counts()
    assert counts == {"succeeded": 98, "failed": 2, "cancelled": 0, "unfinished": 0}


async def test_retention_keeps_a_parent_of_an_unfinished_dependant(
    backend: Backend, clock: Clock
) -> None:
    a, b = await _enqueue(backend, clock, 2)
    child = await _after(backend, clock, [a.id, b.id])
    running = {j.id: j for j in await _claim_all(backend, clock)}
    await _end(backend, clock, [running[a.id]], JobState.SUCCEEDED, result=json.dumps("kept"))
    clock.advance(100)
    assert await backend.purge(clock()) == {}
    assert await backend.get(a.id) is not None
    await _end(backend, clock, [running[b.id]], JobState.SUCCEEDED)
    (started,) = await _claim_all(backend, clock)
    assert [p.result for p in (await backend.dependencies(started.id)).parents] == ["kept", None]
    await _end(backend, clock, [started], JobState.SUCCEEDED)
    clock.advance(100)
    assert await backend.purge(clock()) == {JobState.SUCCEEDED: 3}
    assert await backend.get(child.id) is None


async def test_a_ready_dependant_obeys_priority(backend: Backend, clock: Clock) -> None:
    (parent,) = await _enqueue(backend, clock)
    vip = await _after(backend, clock, [parent.id], priority=0)
    (running,) = await _claim_all(backend, clock)
    regular = await _enqueue(backend, clock, 3, priority=10)
    await _end(backend, clock, [running], JobState.SUCCEEDED)
    first = await backend.claim("w", 1, clock(), LEASE)
    assert [j.id for j in first] == [vip.id]
    assert len(regular) == 3


async def test_a_retry_of_a_dependant_whose_parent_failed_is_refused(
    backend: Backend, clock: Clock
) -> None:
    (parent,) = await _enqueue(backend, clock, max_attempts=1)
    child = await _after(backend, clock, [parent.id])
    (running,) = await _claim_all(backend, clock)
    await _end(backend, clock, [running], JobState.FAILED, error="E: x")
    after = await backend.retry(child.id, clock())
    assert after is not None and after.state is JobState.CANCELLED
    await backend.retry(parent.id, clock())
    (again,) = await _claim_all(backend, clock)
    await _end(backend, clock, [again], JobState.SUCCEEDED)
    assert (await backend.retry(child.id, clock())).state is JobState.QUEUED  # type: ignore[union-attr]
