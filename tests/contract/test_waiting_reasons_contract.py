"""Why jobs wait, on every backend: one job held by each reason is counted once under it;
a job two reasons hold is counted under the first (dependency, not due, paused, unserved, rate
limit, concurrency); ready jobs that only wait for a free slot are not counted; the counts
follow the store as it changes (a window that opens, a resume)."""

from __future__ import annotations

import math
from pathlib import Path

from quart_jobs.backends import Backend
from quart_jobs.backends.shared_sql import reasons
from quart_jobs.backends.shared_sql.dialect import SQLITE
from quart_jobs.backends.sqlite.backend import SQLiteBackend
from quart_jobs.models import NewJob, WaitReason, WorkerRecord
from quart_jobs.rate import RateLimit, StartLog

from ..conftest import Clock

LEASE = 30.0
ONE_PER_MINUTE = RateLimit(1, 60.0)
R = WaitReason
STATEMENTS = reasons.statements(SQLITE)


def worker(clock: Clock, tasks: tuple[str, ...] = ("t",)) -> WorkerRecord:
    now = clock()
    return WorkerRecord("w1", "host", 1, tasks, None, 4, now, now, now + 60)


def rated(queue: str, task: str = "t", **kw: object) -> NewJob:
    return NewJob(task, queue=queue, rate_key="api", rate_limit=ONE_PER_MINUTE, **kw)  # type: ignore[arg-type]


def keyed(queue: str, task: str = "t", **kw: object) -> NewJob:
    return NewJob(task, queue=queue, concurrency_key="db", concurrency_limit=1, **kw)  # type: ignore[arg-type]


async def waiting(backend: Backend, clock: Clock, w: WorkerRecord) -> dict[tuple[str, R], int]:
    found = await backend.operator.waiting_jobs(clock(), [w])
    assert found.at_least == frozenset()
    return {k: n for k, n in found.counts.items() if n}


async def fill_the_keys(backend: Backend, clock: Clock) -> None:
    """Start one job of rate key ``api`` (1/min: its window closes) and one of concurrency key
    ``db`` (limit 1: it is full)."""
    await backend.enqueue([rated("warm"), keyed("warm")], clock())
    assert len(await backend.claim("w1", 10, clock(), LEASE)) == 2


async def test_one_job_per_reason_is_counted_once_under_it(backend: Backend, clock: Clock) -> None:
    w = worker(clock)
    await fill_the_keys(backend, clock)
    await backend.enqueue(
        [
            NewJob("t", queue="later", run_at=clock() + 60),
            NewJob("t", queue="stopped"),
            NewJob("nobody", queue="orphans"),
            rated("limited"),
            keyed("crowded"),
            NewJob("t", queue="free"),  # ready: it starts at the next free slot
        ],
        clock(),
    )
    await backend.pause("stopped", clock())
    assert await waiting(backend, clock, w) == {
        ("later", R.NOT_DUE): 1,
        ("stopped", R.PAUSED): 1,
        ("orphans", R.UNSERVED): 1,
        ("limited", R.RATE_LIMIT): 1,
        ("crowded", R.CONCURRENCY): 1,
    }


async def test_a_job_two_reasons_hold_counts_under_the_first(
    backend: Backend, clock: Clock
) -> None:
    w = worker(clock)
    await fill_the_keys(backend, clock)
    await backend.pause("stopped", clock())
    await backend.enqueue(
        [
            NewJob("t", queue="stopped", run_at=clock() + 60),  # not due, in a paused queue
            NewJob("nobody", queue="stopped"),  # paused, and nobody serves it
            keyed("stopped"),  # paused, its key full
            rated("orphans", task="nobody"),  # unserved, its rate key closed
            keyed("orphans", task="nobody"),  # unserved, its key full
            rated("both", concurrency_key="db", concurrency_limit=1),  # rate key before key
        ],
        clock(),
    )
    assert await waiting(backend, clock, w) == {
        ("stopped", R.NOT_DUE): 1,
        ("stopped", R.PAUSED): 2,
        ("orphans", R.UNSERVED): 2,
        ("both", R.RATE_LIMIT): 1,
    }


async def test_the_counts_follow_the_store(backend: Backend, clock: Clock) -> None:
    w = worker(clock)
    await fill_the_keys(backend, clock)
    await backend.enqueue([rated("limited"), rated("limited"), keyed("crowded")], clock())
    await backend.pause("crowded", clock())
    assert await waiting(backend, clock, w) == {
        ("limited", R.RATE_LIMIT): 2,
        ("crowded", R.PAUSED): 1,
    }
    await backend.resume("crowded")
    clock.advance(61)  # the rate key's window opens; the keyed job still runs (lease 30 s
    # expired, but nothing recovered it: it is still running)
    assert await waiting(backend, clock, w) == {("crowded", R.CONCURRENCY): 1}
    # Served by nobody once the worker's record no longer lists the task.
    assert await waiting(backend, clock, worker(clock, tasks=("other",))) == {
        ("limited", R.UNSERVED): 2,
        ("crowded", R.UNSERVED): 1,
    }


async def test_a_rate_window_waits_until_the_instant_a_claim_may_take_its_job(
    backend: Backend, clock: Clock
) -> None:
    """At the boundary the reason and the claim agree: just before the window opens the job
    waits for the rate limit and no claim takes it; at the instant it opens, it is not counted
    and a claim takes it."""
    w = worker(clock)
    await backend.enqueue([rated("first")], clock())
    (started,) = await backend.claim("w1", 10, clock(), LEASE)
    assert started.started_at is not None
    log = StartLog()
    log.charge(started.started_at, 1)
    opens = log.open_at(ONE_PER_MINUTE, started.started_at)
    await backend.enqueue([rated("next")], clock())
    clock.now = math.nextafter(opens, 0.0)
    assert await waiting(backend, clock, w) == {("next", R.RATE_LIMIT): 1}
    assert await backend.claim("w1", 10, clock(), LEASE) == []
    clock.now = opens
    assert await waiting(backend, clock, w) == {}
    (taken,) = await backend.claim("w1", 10, clock(), LEASE)
    assert taken.queue == "next"


async def test_jobs_that_started_or_ended_are_not_counted(backend: Backend, clock: Clock) -> None:
    w = worker(clock)
    await backend.enqueue([NewJob("t"), NewJob("t")], clock())
    [job, _] = await backend.claim("w1", 2, clock(), LEASE)
    assert job is not None
    assert await waiting(backend, clock, w) == {}


async def test_a_count_that_reaches_the_cap_says_at_least(tmp_path: Path, clock: Clock) -> None:
    store = SQLiteBackend(tmp_path / "jobs.sqlite3")
    await store.open()
    try:
        later = clock() + 60
        await store.enqueue([NewJob("t", run_at=later) for _ in range(3)], clock())
        await store.enqueue([NewJob("nobody", queue="orphans")], clock())
        found = await store.read(
            lambda conn: reasons.drive(
                reasons.count_waiting(clock(), [worker(clock)], cap=2),
                lambda name, params: conn.execute(STATEMENTS[name], params).fetchall(),
            )
        )
    finally:
        await store.close()
    assert dict(found.counts) == {("default", R.NOT_DUE): 2, ("orphans", R.UNSERVED): 1}
    assert found.at_least == {("default", R.NOT_DUE)}
    assert found.describe("default", R.NOT_DUE) == "2+"
    assert found.summary()["default"] == {"not_due": {"count": 2, "at_least": True}}


async def test_a_job_waiting_for_another_counts_under_dependency(
    backend: Backend, clock: Clock
) -> None:
    w = worker(clock)
    (parent,) = await backend.enqueue([NewJob("t", queue="first")], clock())
    await backend.pause("then", clock())  # a paused queue: dependency still comes first
    await backend.enqueue_after([NewJob("t", queue="then")], [parent.job.id], clock())
    assert await waiting(backend, clock, w) == {("then", R.DEPENDENCY): 1}
