"""The operator store's contract: every backend's (memory, SQLite, PostgreSQL) passes every test
here. Admin sessions, the write probe and the dashboard's counts live beside the jobs."""

from __future__ import annotations

from quart_jobs.backends import Backend, Outcome
from quart_jobs.backends.operator import StartedWaits, wait_slot
from quart_jobs.models import JobState

from ..conftest import Clock
from .test_backend_contract import (
    LEASE,
    REGULAR,
    VIP,
    _finish_all,
    claim,
    enqueue,
    lease_of,
    new,
)


async def test_finished_counts_by_bucket_and_state(backend: Backend, clock: Clock) -> None:
    since = clock()
    await _finish_all(backend, clock, JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.FAILED)
    clock.advance(61)
    await _finish_all(backend, clock, JobState.SUCCEEDED)
    (queued,) = await enqueue(backend, clock, new())
    await backend.cancel(queued, clock())
    await enqueue(backend, clock, new())  # still queued: not counted
    counts = await backend.operator.finished_counts(since, 60)
    assert counts == {
        (0, JobState.SUCCEEDED): 2,
        (0, JobState.FAILED): 1,
        (1, JobState.SUCCEEDED): 1,
        (1, JobState.CANCELLED): 1,
    }
    assert await backend.operator.finished_counts(since + 60, 60) == {
        (0, JobState.SUCCEEDED): 1,
        (0, JobState.CANCELLED): 1,
    }
    assert await backend.operator.finished_counts(clock() + 1, 60) == {}


async def test_a_retried_job_is_no_longer_counted_as_finished(
    backend: Backend, clock: Clock
) -> None:
    since = clock()
    (failed,) = await _finish_all(backend, clock, JobState.FAILED)
    await backend.retry(failed, clock())
    assert await backend.operator.finished_counts(since, 60) == {}


async def test_queue_gauges_count_queued_and_running_but_not_finished(
    backend: Backend, clock: Clock
) -> None:
    start = clock()
    await _finish_all(backend, clock, JobState.SUCCEEDED, JobState.FAILED)
    clock.advance(5)
    await enqueue(backend, clock, new(priority=REGULAR), new(priority=VIP))
    clock.advance(5)
    await enqueue(backend, clock, new(priority=VIP), new(priority=REGULAR))
    await claim(backend, clock, 1)  # the first VIP job
    gauges = await backend.operator.queue_gauges()
    assert gauges.count(JobState.RUNNING, VIP) == 1
    assert gauges.count(JobState.QUEUED, VIP) == 1
    assert gauges.count(JobState.QUEUED, REGULAR) == 2
    assert gauges.count(JobState.SUCCEEDED) == gauges.count(JobState.FAILED) == 0
    assert gauges.oldest_queued == {VIP: start + 10, REGULAR: start + 5}


async def test_an_admin_session_lives_until_it_ends_or_expires(
    backend: Backend, clock: Clock
) -> None:
    store, now = backend.operator, clock()
    await store.create_session("s1", now + 60, now)
    await store.create_session("s2", now + 60, now)
    assert await store.session_active("s1", now) and await store.session_active("s2", now)
    assert not await store.session_active("unknown", now)
    await store.end_session("s1")
    await store.end_session("s1")  # twice is harmless
    assert not await store.session_active("s1", now)
    assert await store.session_active("s2", now)
    assert not await store.session_active("s2", now + 61)


async def test_a_write_probe_succeeds_on_a_writable_store(backend: Backend, clock: Clock) -> None:
    await backend.operator.probe_write(clock())
    clock.advance(1)
    await backend.operator.probe_write(clock())
    assert (await backend.stats()).count() == 0  # it touches no job


async def test_started_waits_by_minute_tier_and_slot_with_the_longest_waiting_owners(
    backend: Backend, clock: Clock
) -> None:
    since = clock()
    (_, dan) = await enqueue(
        backend, clock, new(owner="bob"), new(owner="dan", run_at=since + 20, max_attempts=1)
    )
    clock.advance(4)
    await enqueue(backend, clock, new(owner="ann", priority=VIP), new(owner="cat"))
    clock.advance(3)  # bob waited 7 s, ann and cat 3 s; dan is not due yet
    claimed = {j.owner: j for j in await backend.claim("w", 5, clock(), LEASE)}
    assert set(claimed) == {"ann", "bob", "cat"}
    done = [Outcome(lease_of(claimed[o]), JobState.SUCCEEDED) for o in ("ann", "bob")]
    assert await backend.finish(done, clock()) == [True, True]  # cat still runs
    clock.advance(63)  # dan waited 50 s after its run_at
    (late,) = await backend.claim("w", 5, clock(), LEASE)
    assert late.id == dan
    assert await backend.finish([Outcome(lease_of(late), JobState.FAILED)], clock()) == [True]
    await enqueue(backend, clock, new(owner="eve"))  # still queued: not counted
    clock.advance(2)

    waits = await backend.operator.started_waits(since, 60, 5)
    assert waits.counts == {
        (0, VIP, wait_slot(3)): 1,
        (0, REGULAR, wait_slot(3)): 1,
        (0, REGULAR, wait_slot(7)): 1,
        (1, REGULAR, wait_slot(50)): 1,
    }
    assert wait_slot(7) == wait_slot(10) == wait_slot(5.01) != wait_slot(5)
    assert [(o.priority, o.owner, o.longest, o.jobs) for o in waits.owners] == [
        (VIP, "ann", 3, 1),
        (REGULAR, "dan", 50, 1),
        (REGULAR, "bob", 7, 1),
        (REGULAR, "cat", 3, 1),
    ]
    # With ``now``, the jobs still waiting count too: eve's, 2 s so far.
    now = await backend.operator.started_waits(since, 60, 5, clock())
    assert now.counts == waits.counts
    assert [(o.owner, o.longest, o.jobs, o.waiting) for o in now.owners] == [
        ("ann", 3, 1, 0),
        ("dan", 50, 1, 0),
        ("bob", 7, 1, 0),
        ("cat", 3, 1, 0),
        ("eve", 2, 0, 1),
    ]
    clock.advance(60)  # eve has waited longest of all now
    assert [
        o.owner for o in (await backend.operator.started_waits(since, 60, 1, clock())).owners
    ] == [
        "ann",
        "eve",
    ]
    two = await backend.operator.started_waits(since, 60, 2)
    assert [o.owner for o in two.owners] == ["ann", "dan", "bob"]
    later = await backend.operator.started_waits(since + 60, 60, 5)
    assert later.counts == {(0, REGULAR, wait_slot(50)): 1}
    assert [o.owner for o in later.owners] == ["dan"]
    assert await backend.operator.started_waits(clock() + 1, 60, 5) == StartedWaits()
