"""Promises of the job semantics that only a worker and its store together keep, each held by a
test that fails when the promise breaks: run over every backend where the promise applies, on
the injected clock (leases never expire by themselves here; a test moves time when it means to).

Heartbeats run every few milliseconds of real time (``heartbeat_interval``); the clock the worker
and the store see moves only when a test says so, so no test waits for a lease to run out."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from quart_jobs import BackendUnavailable, Jobs, JobState, WorkerSettings
from quart_jobs.backends import Backend, Outcome
from quart_jobs.backends.base import ANY_SCOPE
from quart_jobs.backends.sqlite.backend import SQLiteBackend
from quart_jobs.backends.sqlite.writer import Writer
from quart_jobs.models import Lease, NewJob

from ..conftest import Clock

LEASE = 30.0
#: Heartbeats every 10 ms of real time; leases of 30 s on the injected clock.
QUICK = WorkerSettings(
    concurrency=1,
    lease_seconds=LEASE,
    heartbeat_interval=0.01,
    poll_interval=0.01,
    shutdown_timeout=1.0,
)
#: How long a test waits for what must happen (never reached when the promise holds).
PATIENCE = 10.0


class Seen:
    """What the tasks below saw, fresh for each test (asyncio objects bind to one loop)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.starts: list[int] = []
        self.barrier: asyncio.Barrier | None = None


SEEN: list[Seen] = []


@pytest.fixture(autouse=True)
def seen() -> Iterator[Seen]:
    SEEN[:] = [Seen()]
    yield SEEN[0]
    SEEN.clear()


async def hold() -> None:
    """Runs until cancelled, and says that it was."""
    from quart_jobs import current_job

    SEEN[0].starts.append(current_job().id)
    SEEN[0].started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        SEEN[0].cancelled.set()
        raise


async def note() -> None:
    from quart_jobs import current_job

    SEEN[0].starts.append(current_job().id)


async def together() -> None:
    """Returns once as many of its jobs run at the same time as the barrier's parties."""
    barrier = SEEN[0].barrier
    assert barrier is not None
    await barrier.wait()


async def poison(kind: str) -> None:
    raise {"SystemExit": SystemExit(3), "KeyboardInterrupt": KeyboardInterrupt()}[kind]


def make_jobs(backend: Backend, clock: Clock) -> Jobs:
    jobs = Jobs(backend, clock=clock, worker_settings=QUICK, max_attempts=3)
    for func in (hold, note, together, poison):
        jobs.register(func)
    return jobs


@pytest.fixture
async def other_process(backend: Backend) -> AsyncIterator[Backend]:
    """A second, independent handle on ``backend``'s store (what another process opens): the
    same SQLite file, the same PostgreSQL schema; the memory store is one process's only."""
    if backend.scheme == "memory":
        yield backend
        return
    second: Backend
    if backend.scheme == "sqlite":
        assert isinstance(backend, SQLiteBackend)
        second = SQLiteBackend(backend.path, synchronous="NORMAL")
    else:
        from quart_jobs.backends.postgres.backend import PostgresBackend

        assert isinstance(backend, PostgresBackend)
        second = PostgresBackend(backend.url, schema=backend.schema, min_size=1, max_size=2)
    await second.open()
    try:
        yield second
    finally:
        await second.close()


async def state_of(jobs: Jobs, job_id: int, *states: JobState) -> JobState:
    async with asyncio.timeout(PATIENCE):
        while (state := (await jobs.get(job_id)).state) not in states:
            await asyncio.sleep(0.005)
    return state


# --- cancelling ------------------------------------------------------------------------------


async def test_a_cancel_from_another_process_stops_the_running_task_at_its_next_heartbeat(
    backend: Backend, other_process: Backend, clock: Clock, seen: Seen
) -> None:
    jobs = make_jobs(backend, clock)
    elsewhere = Jobs(other_process, clock=clock)  # no worker: the cancel goes through the store
    async with jobs.run_worker():
        job = await jobs.enqueue(hold)
        await asyncio.wait_for(seen.started.wait(), PATIENCE)
        asked = await elsewhere.cancel(job.id)
        assert asked.state is JobState.RUNNING  # asked: the running worker stops it
        await asyncio.wait_for(seen.cancelled.wait(), PATIENCE)
        assert await state_of(jobs, job.id, JobState.CANCELLED) is JobState.CANCELLED
    ended = await jobs.get(job.id)
    assert ended.attempts == 1 and ended.error == "cancelled while running"


# --- leases ----------------------------------------------------------------------------------


async def test_a_task_whose_lease_another_worker_took_is_cancelled_and_writes_nothing(
    backend: Backend, clock: Clock, seen: Seen
) -> None:
    jobs = make_jobs(backend, clock)
    async with jobs.run_worker() as worker:
        job = await jobs.enqueue(hold)
        await asyncio.wait_for(seen.started.wait(), PATIENCE)
        worker.stop_claiming()  # its task and heartbeats go on; it does not take the job back
        # The worker stops answering for longer than its lease (on the store's clock); another
        # worker recovers the job and takes it. The first worker's clock has not moved.
        later = clock() + 2 * LEASE
        assert await backend.recover_expired(later) == 1
        (taken,) = await backend.claim("other-worker", 1, later, LEASE)
        assert taken.id == job.id
        await asyncio.wait_for(seen.cancelled.wait(), PATIENCE)  # at the next heartbeat
    now = await jobs.get(job.id)
    assert (now.state, now.worker, now.attempts) == (JobState.RUNNING, "other-worker", 2)
    assert now.lease_token == taken.lease_token  # the stopped task's end wrote nothing


async def test_a_recovered_job_keeps_its_place_ahead_of_later_jobs(
    backend: Backend, clock: Clock
) -> None:
    (first, second) = [r.job.id for r in await backend.enqueue([NewJob("t"), NewJob("t")], clock())]
    (claimed,) = await backend.claim("w-dead", 1, clock(), LEASE)
    assert claimed.id == first
    clock.advance(LEASE + 1)  # the worker died: its lease runs out
    assert await backend.recover_expired(clock()) == 1
    order = [j.id for j in await backend.claim("w-new", 1, clock(), LEASE)]
    order += [j.id for j in await backend.claim("w-new", 1, clock(), LEASE)]
    assert order == [first, second]


# --- a task cannot take its worker down ------------------------------------------------------


@pytest.mark.parametrize("kind", ["SystemExit", "KeyboardInterrupt"])
async def test_after_a_poison_task_every_slot_runs_a_job_again(
    backend: Backend, clock: Clock, seen: Seen, kind: str
) -> None:
    slots = 3
    jobs = make_jobs(backend, clock)
    async with jobs.run_worker(concurrency=slots):
        poisoned = await jobs.options(max_attempts=1).enqueue(poison, kind)
        assert await state_of(jobs, poisoned.id, JobState.FAILED) is JobState.FAILED
        # Every slot at once: the barrier lets the jobs through only when all of them run.
        seen.barrier = asyncio.Barrier(slots)
        batch = [await jobs.enqueue(together) for _ in range(slots)]
        for job in batch:
            await state_of(jobs, job.id, JobState.SUCCEEDED)
    assert (await jobs.get(poisoned.id)).error in ("SystemExit: 3", "KeyboardInterrupt")


# --- SQLite ----------------------------------------------------------------------------------


async def test_sqlite_busy_past_the_deadline_is_backend_unavailable_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "busy.sqlite3"
    writer = Writer(path, synchronous="NORMAL", busy_timeout_ms=10, busy_deadline=0.2)
    await writer.start()
    try:
        await writer.run(lambda conn: conn.execute("CREATE TABLE t (v TEXT)"))
        outside = sqlite3.connect(path, isolation_level=None)
        outside.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(BackendUnavailable, match="locked"):
                await asyncio.wait_for(
                    writer.run(lambda conn: conn.execute("INSERT INTO t VALUES ('lost')")),
                    PATIENCE,
                )
        finally:
            outside.execute("ROLLBACK")
            outside.close()
        await writer.run(lambda conn: conn.execute("INSERT INTO t VALUES ('after')"))
    finally:
        await writer.stop()
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT v FROM t").fetchall() == [("after",)]


def synchronous_levels(backend: SQLiteBackend) -> list[int]:
    """``PRAGMA synchronous`` on the writer's connection inside each write from now on (the
    level the write's commit uses): 2 is ``FULL``, 1 is ``NORMAL``."""
    levels: list[int] = []
    writer = backend._writer  # the one connection every write of the process goes through
    submit = writer.submit

    def spied(func: Any, **options: Any) -> Any:
        def write(conn: sqlite3.Connection) -> Any:
            levels.append(int(conn.execute("PRAGMA synchronous").fetchone()[0]))
            return func(conn)

        return submit(write, **options)

    writer.submit = spied  # type: ignore[method-assign]
    return levels


async def test_sqlite_enqueues_commit_with_full_and_claims_and_outcomes_with_normal(
    tmp_path: Path, clock: Clock
) -> None:
    backend = SQLiteBackend(tmp_path / "default.sqlite3")  # the library's default level
    await backend.open()
    try:
        jobs = make_jobs(backend, clock)
        levels = synchronous_levels(backend)

        async def level(write: Any) -> tuple[int, Any]:
            """The level the write ran at, and what it returned."""
            levels.clear()
            value = await write
            (only,) = set(levels)
            return only, value

        # An accepted job survives a power loss: FULL (2).
        assert (await level(jobs.enqueue(note)))[0] == 2
        assert (await level(jobs.transaction(lambda tx: tx.enqueue(note))))[0] == 2
        # Processing may be lost with the power (the job then runs again): NORMAL (1).
        claimed, (a,) = await level(backend.claim("w", 1, clock(), LEASE))
        assert claimed == 1
        lease = Lease(a.id, a.lease_token or "")
        assert (await level(backend.heartbeat([lease], clock(), LEASE)))[0] == 1
        failed = Outcome(lease, JobState.FAILED, error="E")
        both = backend.finish_and_claim([failed], "w", 1, clock(), LEASE, ANY_SCOPE)
        recorded, (_, (b,)) = await level(both)
        assert recorded == 1
        done = Outcome(Lease(b.id, b.lease_token or ""), JobState.SUCCEEDED)
        assert await level(backend.finish([done], clock())) == (1, [True])
    finally:
        await backend.close()
