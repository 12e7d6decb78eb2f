"""Transactional enqueue (``Jobs.transaction``) on every backend: the application's rows and
its jobs are committed together or not at all; the jobs then run like any other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from quart_jobs import Jobs, JobState, QueueFull, Transaction
from quart_jobs.backends import Backend
from quart_jobs.backends.base import QueueLimits
from quart_jobs.backends.memory.backend import MemoryBackend

from ..conftest import Clock

ran: list[int] = []


class Refused(Exception):
    pass


async def ship(order_id: int) -> int:
    ran.append(order_id)
    return order_id


def make_jobs(backend: Backend, clock: Clock) -> Jobs:
    jobs = Jobs(backend, clock=clock)
    jobs.register(ship, name="ship")
    return jobs


async def create_table(jobs: Jobs) -> None:
    def run(tx: Transaction) -> None:
        tx.execute("CREATE TABLE app_orders (id INTEGER PRIMARY KEY, job_id INTEGER)")

    await jobs.transaction(run)


def rows(tx: Transaction) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in tx.fetchall("SELECT id, job_id FROM app_orders")]


async def app_rows(jobs: Jobs) -> list[tuple[int, int]]:
    return await jobs.transaction(rows)


def place(order_id: int, *, fail: bool = False) -> Callable[[Transaction], int]:
    def run(tx: Transaction) -> int:
        job = tx.enqueue("ship", order_id)
        p = tx.placeholder
        tx.execute(f"INSERT INTO app_orders (id, job_id) VALUES ({p}, {p})", (order_id, job.id))
        if fail:
            raise Refused("the application changed its mind")
        return job.id

    return run


async def test_a_committed_transaction_keeps_the_rows_and_the_job_which_runs(
    backend: Backend, clock: Clock
) -> None:
    jobs = make_jobs(backend, clock)
    await create_table(jobs)
    job_id = await jobs.transaction(place(7))
    job = await jobs.get(job_id)
    assert job.state is JobState.QUEUED and job.args == (7,)
    assert await app_rows(jobs) == [(7, job_id)]
    ran.clear()
    async with jobs.run_worker(concurrency=1, poll_interval=0.01):
        for _ in range(500):
            if (await jobs.get(job_id)).state is JobState.SUCCEEDED:
                break
            await asyncio.sleep(0.01)
    assert (await jobs.get(job_id)).state is JobState.SUCCEEDED
    assert ran == [7]


async def test_a_failure_inside_the_transaction_keeps_neither_rows_nor_job(
    backend: Backend, clock: Clock
) -> None:
    jobs = make_jobs(backend, clock)
    await create_table(jobs)
    with pytest.raises(Refused):
        await jobs.transaction(place(8, fail=True))
    assert await jobs.list() == []
    assert await app_rows(jobs) == []
    assert (await backend.stats()).count(JobState.QUEUED) == 0


async def test_a_failing_sql_statement_rolls_back_the_jobs_enqueued_before_it(
    backend: Backend, clock: Clock
) -> None:
    jobs = make_jobs(backend, clock)
    await create_table(jobs)
    await jobs.transaction(place(1))
    with pytest.raises(Exception, match=r"(?i)unique|constraint"):
        await jobs.transaction(place(1))  # same primary key
    assert len(await jobs.list()) == 1
    assert [r[0] for r in await app_rows(jobs)] == [1]


async def test_queue_limits_apply_inside_the_transaction(backend: Backend, clock: Clock) -> None:
    jobs = make_jobs(backend, clock)
    await create_table(jobs)
    await jobs.transaction(place(1))

    def over_limit(tx: Transaction) -> None:
        tx.execute(f"INSERT INTO app_orders (id, job_id) VALUES (2, {tx.placeholder})", (0,))
        tx.options(limits=QueueLimits(max_queued=1)).enqueue("ship", 2)

    with pytest.raises(QueueFull):
        await jobs.transaction(over_limit)
    assert len(await jobs.list()) == 1
    assert await app_rows(jobs) == [(1, (await jobs.list())[0].id)]  # the row went with it


async def test_the_sql_dialect_and_its_placeholder_are_the_stores(
    backend: Backend, clock: Clock
) -> None:
    jobs = make_jobs(backend, clock)
    seen = await jobs.transaction(lambda tx: (tx.dialect, tx.placeholder))
    expected = {"postgresql": ("postgresql", "%s")}.get(backend.scheme, ("sqlite", "?"))
    assert seen == expected  # memory:// runs the application's SQL on an in-memory SQLite


async def test_memory_keeps_the_applications_tables_as_long_as_its_jobs(clock: Clock) -> None:
    jobs = make_jobs(MemoryBackend(), clock)  # one Jobs opened by test after test
    async with jobs:
        await create_table(jobs)
        job_id = await jobs.transaction(place(5))
    async with jobs:
        assert await app_rows(jobs) == [(5, job_id)]
        assert (await jobs.get(job_id)).args == (5,)


async def test_cancel_and_get_inside_the_transaction_are_undone_with_it(
    backend: Backend, clock: Clock
) -> None:
    jobs = make_jobs(backend, clock)
    job = await jobs.enqueue("ship", 3)

    def cancel_then_fail(tx: Transaction) -> None:
        seen = tx.get_job(job.id)
        assert seen is not None and seen.state is JobState.QUEUED
        cancelled = tx.cancel_job(job.id)
        assert cancelled is not None and cancelled.state is JobState.CANCELLED
        raise Refused("undo")

    with pytest.raises(Refused):
        await jobs.transaction(cancel_then_fail)
    assert (await jobs.get(job.id)).state is JobState.QUEUED
    cancelled = await jobs.transaction(lambda tx: tx.cancel_job(job.id))
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    assert (await jobs.get(job.id)).state is JobState.CANCELLED
    assert await jobs.transaction(lambda tx: tx.get_job(10**9)) is None


async def test_a_transaction_cannot_be_used_after_it_ended(backend: Backend, clock: Clock) -> None:
    jobs = make_jobs(backend, clock)
    kept: list[Transaction] = []
    await jobs.transaction(kept.append)
    with pytest.raises(RuntimeError, match="ended"):
        kept[0].enqueue("ship", 1)
    assert await jobs.list() == []


async def test_a_store_closed_and_opened_again_runs_transactions(
    backend: Backend, clock: Clock
) -> None:
    """As ``orders serve`` does: the store opened to check it, closed, opened to serve."""
    if isinstance(backend, MemoryBackend):
        pytest.skip("memory:// keeps no application tables across a close")
    jobs = make_jobs(backend, clock)
    assert await jobs.transaction(lambda tx: tx.fetchone("SELECT 1")) == (1,)
    await backend.close()
    await backend.open()
    assert await jobs.transaction(lambda tx: tx.fetchone("SELECT 1")) == (1,)


async def test_many_concurrent_transactions_all_commit(backend: Backend, clock: Clock) -> None:
    jobs = make_jobs(backend, clock)
    await create_table(jobs)
    ids = await asyncio.gather(*(jobs.transaction(place(n)) for n in range(1, 41)))
    assert len(set(ids)) == 40
    assert len(await jobs.list(limit=100)) == 40
    assert sorted(r[0] for r in await app_rows(jobs)) == list(range(1, 41))


async def test_purge_deletes_in_batches_until_every_old_finished_job_is_gone(
    backend: Backend, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quart_jobs.backends.shared_sql import jobs as sql

    monkeypatch.setattr(sql, "PURGE_BATCH_ROWS", 3)  # both SQL backends read it at each purge
    jobs = make_jobs(backend, clock)
    old = [(await jobs.enqueue("ship", n)).id for n in range(10)]
    for job_id in old:
        await jobs.cancel(job_id)
    live = await jobs.enqueue("ship", 99)
    clock.advance(10)
    removed = await backend.purge(clock() - 1)
    assert removed == {JobState.CANCELLED: 10}
    assert [job.id for job in await jobs.list()] == [live.id]
