"""Workflows through the public API on every backend, run by a real worker: a chain passes
results from step to step, a group's callback runs once with the members' counts, a graph
enqueued in ``jobs.transaction`` is kept or rolled back whole with the application's rows."""

from __future__ import annotations

from typing import Any

import pytest

from quart_jobs import Jobs, JobsError, JobState, Transaction, UnknownDependency, current_job, step
from quart_jobs.backends import Backend

from ..conftest import Clock

seen: list[Any] = []


async def first(x: int) -> int:
    return x + 1


async def plus_one() -> int:
    (previous,) = await current_job().parent_results()
    return int(previous) + 1


async def member(n: int) -> int:
    if n % 10 == 0:
        raise ValueError(f"member {n} fails")
    return n


async def report() -> dict[str, int]:
    counts = await current_job().parent_counts()
    seen.append(counts)
    return counts


async def collect() -> list[Any]:
    return await current_job().parent_results()


def plus_one_sync() -> int:
    """A sync task (on a thread of its own): the blocking variants."""
    (previous,) = current_job().parent_results_sync()
    assert current_job().parent_counts_sync()["succeeded"] == 1
    return int(previous) + 1


async def misuses_sync() -> str:
    try:
        current_job().parent_results_sync()
    except JobsError as exc:
        return str(exc)
    return "no error"


def make_jobs(backend: Backend, clock: Clock) -> Jobs:
    jobs = Jobs(backend, clock=clock)
    for func in (first, plus_one, member, report, collect, plus_one_sync, misuses_sync):
        jobs.register(func, name=func.__name__)
    jobs.max_attempts = 1
    return jobs


async def test_a_chain_passes_results_from_step_to_step(backend: Backend, clock: Clock) -> None:
    jobs = make_jobs(backend, clock)
    chain = await jobs.chain(step(first, 1), step(plus_one), step(plus_one))
    assert [j.state for j in chain] == [JobState.QUEUED, JobState.WAITING, JobState.WAITING]
    await jobs.drain(timeout=30)
    assert [(await jobs.get(j.id)).result for j in chain] == [2, 3, 4]


async def test_a_chain_of_sync_tasks_reads_results_on_their_threads(
    backend: Backend, clock: Clock
) -> None:
    jobs = make_jobs(backend, clock)
    chain = await jobs.chain(step(first, 1), step(plus_one_sync), step(plus_one_sync))
    await jobs.drain(timeout=30)
    assert [(await jobs.get(j.id)).result for j in chain] == [2, 3, 4]
    misuse = await jobs.enqueue(misuses_sync)
    await jobs.drain(timeout=30)
    assert "an async task awaits" in (await jobs.get(misuse.id)).result


async def test_a_group_callback_runs_once_with_the_counts(backend: Backend, clock: Clock) -> None:
    seen.clear()
    jobs = make_jobs(backend, clock)
    group = await jobs.group([step(member, n) for n in range(30)], then=step(report))
    assert len(group.members) == 30 and group.callback.state is JobState.WAITING
    await jobs.drain(timeout=30)
    expected = {"succeeded": 27, "failed": 3, "cancelled": 0, "unfinished": 0}
    assert seen == [expected]
    done = await jobs.get(group.callback.id)
    assert done.state is JobState.SUCCEEDED and done.result == expected


async def test_options_after_keeps_the_order_given_for_parent_results(
    backend: Backend, clock: Clock
) -> None:
    jobs = make_jobs(backend, clock)
    a = await jobs.enqueue(first, 10)
    b = await jobs.enqueue(first, 20)
    child = await jobs.options(after=[b, a.id]).enqueue(collect)
    assert (await jobs.get(child.id)).state is JobState.WAITING
    await jobs.drain(timeout=30)
    assert (await jobs.get(child.id)).result == [21, 11]


async def test_a_graph_in_a_transaction_rolls_back_whole(backend: Backend, clock: Clock) -> None:
    jobs = make_jobs(backend, clock)

    def build(tx: Transaction) -> None:
        head = tx.enqueue(first, 1)
        tx.chain(step(plus_one).with_options(after=[head]), step(plus_one))
        tx.options(after=[head.id, 10**12]).enqueue(collect)  # no such job: all is undone

    with pytest.raises(UnknownDependency, match="does not exist"):
        await jobs.transaction(build)
    assert await jobs.list() == []

    def build_ok(tx: Transaction) -> list[int]:
        head = tx.enqueue(first, 1)
        rest = tx.chain(step(plus_one).with_options(after=[head]), step(plus_one))
        return [head.id, *(j.id for j in rest)]

    ids = await jobs.transaction(build_ok)
    await jobs.drain(timeout=30)
    assert [(await jobs.get(i)).result for i in ids] == [2, 3, 4]


async def test_a_failed_step_cancels_the_rest_of_the_chain(backend: Backend, clock: Clock) -> None:
    jobs = make_jobs(backend, clock)
    chain = await jobs.chain(step(member, 10), step(plus_one), step(plus_one))
    await jobs.drain(timeout=30)
    states = [(await jobs.get(j.id)) for j in chain]
    assert [j.state for j in states] == [JobState.FAILED, JobState.CANCELLED, JobState.CANCELLED]
    assert states[1].error == f"dependency {chain[0].id} failed"
    assert states[2].error == f"dependency {chain[1].id} cancelled"


def test_bad_after_values_are_refused_where_written() -> None:
    from quart_jobs.builder import enqueue_options

    with pytest.raises(ValueError, match="list of jobs or job ids"):
        enqueue_options(after=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs after"):
        enqueue_options(run_always=True)
