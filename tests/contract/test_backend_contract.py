"""The backend contract: every backend (memory, SQLite, PostgreSQL) passes every test here."""

from __future__ import annotations

import asyncio
import math

import pytest

from quart_jobs.backends import Backend, Outcome
from quart_jobs.backends.base import ANY_SCOPE, ClaimScope
from quart_jobs.fairness import Weights
from quart_jobs.models import JobFilter, JobState, Lease, NewJob, Progress, Tier, Why
from quart_jobs.rate import RateLimit

from ..conftest import Clock

LEASE = 30.0
VIP, REGULAR = int(Tier.VIP), int(Tier.REGULAR)


def new(task: str = "t", priority: int = REGULAR, **kw: object) -> NewJob:
    return NewJob(task=task, priority=priority, **kw)  # type: ignore[arg-type]


async def enqueue(backend: Backend, clock: Clock, *jobs: NewJob) -> list[int]:
    results = await backend.enqueue(list(jobs), clock())
    return [r.job.id for r in results]


async def claim(
    backend: Backend,
    clock: Clock,
    limit: int = 1,
    worker: str = "w1",
    scope: ClaimScope = ANY_SCOPE,
) -> list[int]:
    return [j.id for j in await backend.claim(worker, limit, clock(), LEASE, scope)]


def lease_of(job: object) -> Lease:
    return Lease(job.id, job.lease_token)  # type: ignore[attr-defined]


async def test_enqueue_stores_a_queued_job_with_its_arguments(
    backend: Backend, clock: Clock
) -> None:
    (result,) = await backend.enqueue(
        [new("mod.f", args=(1, "x", [2]), kwargs={"a": {"b": None}}, owner="alice", timeout=3.5)],
        clock(),
    )
    assert result.created
    job = await backend.get(result.job.id)
    assert job is not None
    assert job == result.job
    assert job.state is JobState.QUEUED
    assert (job.task, job.args, dict(job.kwargs)) == ("mod.f", (1, "x", [2]), {"a": {"b": None}})
    assert (job.owner, job.timeout, job.attempts, job.max_attempts) == ("alice", 3.5, 0, 5)
    assert job.enqueued_at == job.run_at == clock()
    assert await backend.get(job.id + 1000) is None


async def test_with_strict_weights_vip_jobs_start_first_and_fifo_within_a_tier(
    backend: Backend, clock: Clock
) -> None:
    strict = ClaimScope(weights=Weights({VIP: math.inf, REGULAR: 1}))
    regular = await enqueue(backend, clock, *(new(priority=REGULAR) for _ in range(3)))
    vip = await enqueue(backend, clock, *(new(priority=VIP) for _ in range(3)))
    order = [
        *(await claim(backend, clock, 2, scope=strict)),
        *(await claim(backend, clock, 10, scope=strict)),
    ]
    assert order == vip + regular


async def test_claim_marks_running_with_a_lease_and_counts_the_attempt(
    backend: Backend, clock: Clock
) -> None:
    (job_id,) = await enqueue(backend, clock, new())
    (job,) = await backend.claim("worker-a", 5, clock(), LEASE)
    assert job.id == job_id
    assert job.state is JobState.RUNNING
    assert (job.attempts, job.worker, job.started_at) == (1, "worker-a", clock())
    assert job.lease_token and job.lease_expires_at == clock() + LEASE
    assert await claim(backend, clock, 5) == []


async def test_a_claimed_job_is_what_the_store_then_holds(backend: Backend, clock: Clock) -> None:
    """The job a claim hands out (built from fewer columns and what the claim set) reads as
    the store holds it: a new job, one queued again after a failure with its progress, one an
    operator retried, one whose lease lapsed, and one with every option."""
    full = new(
        "mod.f", args=(1,), kwargs={"a": 2}, owner="o", key="k", timeout=2.0, queue="q",
        concurrency_key="ck", concurrency_limit=3, rate_key="rk",
        rate_limit=RateLimit(100, 1.0), trace_context='{"traceparent": "00-ab"}',
    )  # fmt: skip
    ids = await enqueue(backend, clock, new(), new(), new(), new())
    jobs = await backend.claim("w", 4, clock(), LEASE)
    assert [j.id for j in jobs] == ids
    ids += await enqueue(backend, clock, full)
    clock.advance(1)
    progress = Progress(0.5, "half")
    outcomes = [
        Outcome(
            lease_of(jobs[0]), JobState.FAILED, error="E: a", run_at=clock(), progress=progress
        ),
        Outcome(lease_of(jobs[1]), JobState.FAILED, error="E: b", traceback="tb", why=Why.GAVE_UP),
        Outcome(lease_of(jobs[2]), JobState.CANCELLED, progress=progress),
    ]
    assert await backend.finish(outcomes, clock()) == [True] * 3
    assert await backend.retry(ids[1], clock()) is not None
    assert await backend.retry(ids[2], clock()) is not None
    clock.advance(LEASE + 1)  # the fourth's lease lapses: it is queued again
    assert await backend.recover_expired(clock()) == 1
    claimed = await backend.claim("w2", 10, clock(), LEASE)
    assert sorted(j.id for j in claimed) == sorted(ids)
    for job in claimed:
        assert job == await backend.get(job.id), job.id
        assert job.state is JobState.RUNNING and job.worker == "w2" and job.progress is None


async def test_delayed_job_waits_for_its_run_at(backend: Backend, clock: Clock) -> None:
    (later,) = await enqueue(backend, clock, new(priority=VIP, run_at=clock() + 10))
    (now,) = await enqueue(backend, clock, new(priority=REGULAR))
    assert await backend.next_run_at() == clock()
    assert await claim(backend, clock, 5) == [now]
    assert await backend.next_run_at() == clock() + 10
    clock.advance(10)
    assert await claim(backend, clock, 5) == [later]
    assert await backend.next_run_at() is None


async def test_a_partial_claim_round_says_when_the_next_job_is_ready(
    backend: Backend, clock: Clock
) -> None:
    # The worker sleeps on what its round read: the same answer as next_run_at after it.
    (later,) = await enqueue(backend, clock, new(run_at=clock() + 10))
    _, now = await enqueue(backend, clock, new(queue="emails"), new())
    emails = ClaimScope(None, ("emails",))
    done = await backend.claim_round([], "w", 5, clock(), LEASE, emails)
    assert [j.queue for j in done.claimed] == ["emails"]  # fewer than asked for
    assert done.next_at == await backend.next_run_at(emails) == clock() + 10  # not yet tagged
    done = await backend.claim_round([], "w", 1, clock(), LEASE)  # took all it asked for
    assert [j.id for j in done.claimed] == [now] and done.next_at is None  # not read
    done = await backend.claim_round([], "w", 5, clock(), LEASE)
    assert done.claimed == []
    assert done.next_at == await backend.next_run_at() == clock() + 10
    running = await backend.get(now)
    assert running is not None
    clock.advance(1)
    finished = [Outcome(lease_of(running), JobState.FAILED, error="E", run_at=clock() + 2)]
    done = await backend.claim_round(finished, "w", 5, clock(), LEASE)  # its retry is due first
    assert done.held == [True] and done.claimed == []
    assert done.next_at == await backend.next_run_at() == clock() + 2
    clock.advance(9)
    done = await backend.claim_round([], "w", 5, clock(), LEASE)
    assert sorted(j.id for j in done.claimed) == sorted([now, later])
    assert done.next_at is None


async def test_finish_records_each_outcome(backend: Backend, clock: Clock) -> None:
    ids = await enqueue(backend, clock, new(), new(), new(), new())
    jobs = await backend.claim("w", 4, clock(), LEASE)
    clock.advance(1)
    outcomes = [
        Outcome(lease_of(jobs[0]), JobState.SUCCEEDED, result='{"ok":true}'),
        Outcome(lease_of(jobs[1]), JobState.FAILED, error="E: boom", traceback="tb"),
        Outcome(lease_of(jobs[2]), JobState.FAILED, error="E: again", run_at=clock() + 5),
        Outcome(lease_of(jobs[3]), JobState.CANCELLED),
    ]
    assert await backend.finish(outcomes, clock()) == [True] * 4
    done, failed, retrying, cancelled = [await backend.get(i) for i in ids]
    assert done and done.state is JobState.SUCCEEDED and done.result == {"ok": True}
    assert done.finished_at == clock() and done.lease_token is None
    assert failed and failed.state is JobState.FAILED
    assert (failed.error, failed.traceback) == ("E: boom", "tb")
    assert retrying and retrying.state is JobState.QUEUED and retrying.run_at == clock() + 5
    assert retrying.error == "E: again" and retrying.attempts == 1
    assert cancelled and cancelled.state is JobState.CANCELLED


async def test_finish_and_claim_records_every_kind_of_outcome_and_claims_in_one_call(
    backend: Backend, clock: Clock
) -> None:
    ids = await enqueue(backend, clock, *(new() for _ in range(6)))
    jobs = await backend.claim("w", 5, clock(), LEASE)
    clock.advance(1)
    outcomes = [
        Outcome(lease_of(jobs[0]), JobState.SUCCEEDED, result="1"),
        Outcome(Lease(jobs[1].id, "forged"), JobState.SUCCEEDED, result="2"),
        Outcome(lease_of(jobs[2]), JobState.FAILED, error="E", run_at=clock() + 5),
        Outcome(lease_of(jobs[3]), JobState.QUEUED, refund=True),
        Outcome(lease_of(jobs[4]), JobState.FAILED, error="E: end", traceback="tb"),
    ]
    held, claimed = await backend.finish_and_claim(outcomes, "w", 2, clock(), LEASE)
    assert held == [True, False, True, True, True]
    assert [j.id for j in claimed] == [ids[3], ids[5]]
    states = [(await backend.get(i)).state for i in ids]  # type: ignore[union-attr]
    assert states == [
        JobState.SUCCEEDED,
        JobState.RUNNING,
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.FAILED,
        JobState.RUNNING,
    ]
    done = await backend.get(ids[0])
    assert done and done.result == 1 and done.finished_at == clock() and done.lease_token is None


async def test_refund_puts_a_job_back_in_its_place_without_charging_an_attempt(
    backend: Backend, clock: Clock
) -> None:
    first, _second = await enqueue(backend, clock, new(), new())
    (job,) = await backend.claim("w", 1, clock(), LEASE)
    assert job.id == first
    assert await backend.finish([Outcome(lease_of(job), JobState.QUEUED, refund=True)], clock())
    back = await backend.get(first)
    assert back and back.state is JobState.QUEUED and back.attempts == 0
    assert back.lease_token is None and back.worker is None
    assert await claim(backend, clock, 1) == [first]


async def test_a_write_with_a_stale_lease_is_refused(backend: Backend, clock: Clock) -> None:
    (job_id,) = await enqueue(backend, clock, new())
    (job,) = await backend.claim("w1", 1, clock(), LEASE)
    forged = Lease(job_id, "not-the-token")
    assert await backend.finish([Outcome(forged, JobState.SUCCEEDED)], clock()) == [False]
    (beat,) = await backend.heartbeat([forged], clock(), LEASE)
    assert not beat.held
    clock.advance(LEASE + 1)
    assert await backend.recover_expired(clock()) == 1
    (again,) = await backend.claim("w2", 1, clock(), LEASE)
    assert again.id == job_id and again.attempts == 2 and again.lease_token != job.lease_token
    stale = await backend.finish([Outcome(lease_of(job), JobState.SUCCEEDED)], clock())
    assert stale == [False]
    current = await backend.get(job_id)
    assert current and current.state is JobState.RUNNING and current.worker == "w2"
    assert await backend.finish([Outcome(lease_of(again), JobState.SUCCEEDED)], clock()) == [True]


async def test_heartbeat_extends_the_lease_so_it_is_not_recovered(
    backend: Backend, clock: Clock
) -> None:
    await enqueue(backend, clock, new())
    (job,) = await backend.claim("w1", 1, clock(), LEASE)
    clock.advance(LEASE - 1)
    (beat,) = await backend.heartbeat([lease_of(job)], clock(), LEASE)
    assert beat.held and not beat.cancel_requested
    clock.advance(LEASE - 1)
    assert await backend.recover_expired(clock()) == 0
    clock.advance(2)
    assert await backend.recover_expired(clock()) == 1


async def test_an_expired_job_out_of_attempts_fails(backend: Backend, clock: Clock) -> None:
    (job_id,) = await enqueue(backend, clock, new(max_attempts=1))
    await claim(backend, clock)
    clock.advance(LEASE + 1)
    assert await backend.recover_expired(clock()) == 1
    job = await backend.get(job_id)
    assert job and job.state is JobState.FAILED and "lease expired" in (job.error or "")


async def test_cancel_queued_running_and_finished(backend: Backend, clock: Clock) -> None:
    queued, running, done = await enqueue(backend, clock, new(), new(), new())
    jobs = await backend.claim("w", 3, clock(), LEASE)
    by_id = {j.id: j for j in jobs}
    await backend.finish([Outcome(lease_of(by_id[done]), JobState.SUCCEEDED)], clock())
    await backend.finish([Outcome(lease_of(by_id[queued]), JobState.QUEUED, refund=True)], clock())

    cancelled = await backend.cancel(queued, clock())
    assert cancelled and cancelled.state is JobState.CANCELLED
    asked = await backend.cancel(running, clock())
    assert asked and asked.state is JobState.RUNNING and asked.cancel_requested
    (beat,) = await backend.heartbeat([lease_of(by_id[running])], clock(), LEASE)
    assert beat.held and beat.cancel_requested
    untouched = await backend.cancel(done, clock())
    assert untouched and untouched.state is JobState.SUCCEEDED
    assert await backend.cancel(10_000, clock()) is None
    assert await claim(backend, clock, 5) == []


@pytest.mark.parametrize("back", ["retry", "put back"])
async def test_a_cancel_requested_while_a_job_ran_wins_over_its_return_to_the_queue(
    backend: Backend, clock: Clock, back: str
) -> None:
    # The attempt ended (failed with attempts left, or handed back at a stop) just before the
    # operator's cancel reached the store, and the outcome is written after it.
    (job_id,) = await enqueue(backend, clock, new())
    (job,) = await backend.claim("w", 1, clock(), LEASE)
    asked = await backend.cancel(job_id, clock())
    assert asked and asked.state is JobState.RUNNING and asked.cancel_requested
    if back == "retry":
        outcome = Outcome(lease_of(job), JobState.FAILED, error="boom", run_at=clock() + 60)
    else:
        outcome = Outcome(lease_of(job), JobState.QUEUED, refund=True)
    assert await backend.finish([outcome], clock()) == [True]
    ended = await backend.get(job_id)
    assert ended and ended.state is JobState.CANCELLED and ended.finished_at is not None
    assert not ended.cancel_requested and ended.lease_token is None
    clock.advance(120)
    assert await claim(backend, clock, 5) == []


async def test_cancel_of_queued_only_leaves_a_running_job_alone(
    backend: Backend, clock: Clock
) -> None:
    (job_id,) = await enqueue(backend, clock, new())
    (job,) = await backend.claim("w", 1, clock(), LEASE)
    still = await backend.cancel(job_id, clock(), running=False)
    assert still and still.state is JobState.RUNNING and not still.cancel_requested
    (beat,) = await backend.heartbeat([lease_of(job)], clock(), LEASE)
    assert beat.held and not beat.cancel_requested


async def test_retry_queues_a_failed_job_with_fresh_attempts(
    backend: Backend, clock: Clock
) -> None:
    failed, done = await enqueue(backend, clock, new(max_attempts=1), new())
    jobs = {j.id: j for j in await backend.claim("w", 2, clock(), LEASE)}
    await backend.finish(
        [
            Outcome(lease_of(jobs[failed]), JobState.FAILED, error="x"),
            Outcome(lease_of(jobs[done]), JobState.SUCCEEDED),
        ],
        clock(),
    )
    retried = await backend.retry(failed, clock())
    assert retried and retried.state is JobState.QUEUED and retried.attempts == 0
    assert retried.error is None
    unchanged = await backend.retry(done, clock())
    assert unchanged and unchanged.state is JobState.SUCCEEDED
    assert await backend.retry(10_000, clock()) is None
    assert await claim(backend, clock, 5) == [failed]


async def test_an_existing_key_returns_the_existing_job(backend: Backend, clock: Clock) -> None:
    first = await backend.enqueue([new(key="order-1")], clock())
    second = await backend.enqueue([new(key="order-1", args=(2,)), new(key="order-2")], clock())
    assert first[0].created and not second[0].created and second[1].created
    assert second[0].job.id == first[0].job.id and second[0].job.args == ()
    assert await backend.get_by_key("order-1") == second[0].job
    assert await backend.get_by_key("nope") is None


async def test_concurrent_enqueues_with_one_key_create_one_job(
    backend: Backend, clock: Clock
) -> None:
    results = await asyncio.gather(
        *(backend.enqueue([new(key="same")], clock()) for _ in range(20))
    )
    ids = {r[0].job.id for r in results}
    assert len(ids) == 1
    assert sum(r[0].created for r in results) == 1


async def test_many_callers_enqueueing_at_once_each_get_their_own_jobs_in_order(
    backend: Backend, clock: Clock
) -> None:
    """Callers that enqueue at the same moment (one group commit) each get back the jobs they
    gave, as stored; each owner's jobs then start in the order they were enqueued."""
    owners = ("alice", "bob", None)

    async def call(i: int) -> list[tuple[int, int]]:
        jobs = [new(args=(i, k), owner=owners[i % 3]) for k in range(1 + i % 2)]
        results = await backend.enqueue(jobs, clock())
        assert all(r.created for r in results)
        return [(r.job.id, r.job.args[1]) for r in results]

    calls = await asyncio.gather(*(call(i) for i in range(30)))
    for i, results in enumerate(calls):
        assert [k for _, k in results] == list(range(1 + i % 2))
        assert [job_id for job_id, _ in results] == sorted(job_id for job_id, _ in results)
        for job_id, k in results:
            stored = await backend.get(job_id)
            assert stored is not None and stored.args == (i, k)
            assert stored.owner == owners[i % 3] and stored.state is JobState.QUEUED
    started = [await backend.get(job_id) for job_id in await claim(backend, clock, 100)]
    assert len(started) == sum(len(results) for results in calls)
    for owner in owners:
        mine = [job.args for job in started if job is not None and job.owner == owner]
        assert mine == sorted(mine)


async def test_concurrent_claims_never_hand_out_a_job_twice(backend: Backend, clock: Clock) -> None:
    await enqueue(backend, clock, *(new() for _ in range(30)))
    batches = await asyncio.gather(*(backend.claim(f"w{i}", 2, clock(), LEASE) for i in range(20)))
    claimed = [j.id for batch in batches for j in batch]
    assert len(claimed) == 30 and len(set(claimed)) == 30


async def test_list_filters_newest_first(backend: Backend, clock: Clock) -> None:
    a, b, c, d = await enqueue(
        backend,
        clock,
        new("x", VIP, owner="alice"),
        new("y", REGULAR, owner="bob"),
        new("x", REGULAR, owner="alice"),
        new("x", VIP, owner="bob"),
    )
    await claim(backend, clock, 1)  # a starts
    assert [j.id for j in await backend.list_jobs(JobFilter())] == [d, c, b, a]
    assert [j.id for j in await backend.list_jobs(JobFilter(task="x"))] == [d, c, a]
    assert [j.id for j in await backend.list_jobs(JobFilter(owner="alice"))] == [c, a]
    assert [j.id for j in await backend.list_jobs(JobFilter(priority=VIP))] == [d, a]
    assert [j.id for j in await backend.list_jobs(JobFilter(state=JobState.RUNNING))] == [a]
    assert [j.id for j in await backend.list_jobs(JobFilter(limit=2))] == [d, c]
    assert [j.id for j in await backend.list_jobs(JobFilter(before_id=c))] == [b, a]


async def test_stats_count_by_state_and_tier(backend: Backend, clock: Clock) -> None:
    start = clock()
    await enqueue(backend, clock, new(priority=VIP), new(priority=REGULAR))
    clock.advance(5)
    await enqueue(backend, clock, new(priority=REGULAR), new(priority=VIP))
    await claim(backend, clock, 1)
    stats = await backend.stats()
    assert stats.count(JobState.RUNNING, VIP) == 1
    assert stats.count(JobState.QUEUED, VIP) == 1
    assert stats.count(JobState.QUEUED, REGULAR) == 2
    assert stats.count() == 4
    assert stats.oldest_queued == {VIP: start + 5, REGULAR: start}


async def _finish_all(backend: Backend, clock: Clock, *states: JobState) -> list[int]:
    """Enqueue one job per state, claim them, and end each in its state (ids in that order)."""
    ids = await enqueue(backend, clock, *(new(max_attempts=1) for _ in states))
    by_id = {j.id: j for j in await backend.claim("w", len(ids), clock(), LEASE)}
    outcomes = [Outcome(lease_of(by_id[i]), s) for i, s in zip(ids, states, strict=True)]
    assert await backend.finish(outcomes, clock()) == [True] * len(ids)
    return ids


async def test_purge_removes_only_finished_jobs_older_than_the_cutoff(
    backend: Backend, clock: Clock
) -> None:
    old = await _finish_all(backend, clock, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
    (keyed,) = await enqueue(backend, clock, new(key="order-9"))
    await backend.cancel(keyed, clock())
    (running,) = await enqueue(backend, clock, new())
    await claim(backend, clock, 1)
    clock.advance(100)
    (recent,) = await _finish_all(backend, clock, JobState.SUCCEEDED)
    (queued,) = await enqueue(backend, clock, new())

    removed = await backend.purge(clock() - 50, {JobState.SUCCEEDED, JobState.CANCELLED})
    assert removed == {JobState.SUCCEEDED: 1, JobState.CANCELLED: 2}
    assert await backend.get(old[0]) is None and await backend.get(keyed) is None
    assert await backend.get_by_key("order-9") is None
    left = {j.id for j in await backend.list_jobs(JobFilter(limit=100))}
    assert left == {old[1], running, queued, recent}

    assert await backend.purge(clock() - 50) == {JobState.FAILED: 1}  # only states removed
    assert await backend.purge(clock() - 50) == {}
    (again,) = await backend.enqueue([new(key="order-9")], clock())
    assert again.created


async def test_purge_refuses_live_states(backend: Backend, clock: Clock) -> None:
    (job_id,) = await enqueue(backend, clock, new())
    with pytest.raises(ValueError, match="only finished jobs"):
        await backend.purge(clock() + 10, {JobState.QUEUED})
    assert await backend.get(job_id) is not None


# --- queue limits (QueueLimits): checked atomically with the insert -------------------------

from quart_jobs.backends.base import QueueLimits  # noqa: E402 - appended section
from quart_jobs.errors import QueueFull  # noqa: E402


async def test_queue_limits_refuse_past_the_global_cap_and_store_nothing(
    backend: Backend, clock: Clock
) -> None:
    limits = QueueLimits(max_queued=3)
    await backend.enqueue([new(owner="a"), new(owner="b")], clock(), limits=limits)
    with pytest.raises(QueueFull) as caught:
        await backend.enqueue([new(owner="c"), new(owner="c")], clock(), limits=limits)
    assert caught.value.scope == "global"
    assert await backend.list_jobs(JobFilter(owner="c")) == []  # the whole call, not half
    await backend.enqueue([new(owner="c")], clock(), limits=limits)
    assert (await backend.stats()).count(JobState.QUEUED) == 3


async def test_queue_limits_per_owner_leave_other_owners_alone(
    backend: Backend, clock: Clock
) -> None:
    limits = QueueLimits(max_queued=100, max_queued_per_owner=2)
    await backend.enqueue([new(owner="a"), new(owner="a")], clock(), limits=limits)
    with pytest.raises(QueueFull) as caught:
        await backend.enqueue([new(owner="a")], clock(), limits=limits)
    assert caught.value.scope == "owner"
    await backend.enqueue([new(owner="b"), new(), new()], clock(), limits=limits)
    # A job that leaves the queue makes room again.
    (running,) = await backend.claim("w", 1, clock(), LEASE)
    assert running.owner == "a"
    await backend.enqueue([new(owner="a")], clock(), limits=limits)
    with pytest.raises(QueueFull):
        await backend.enqueue([new(owner="a")], clock(), limits=limits)


async def test_queue_limits_count_requeued_and_cancelled_jobs_right(
    backend: Backend, clock: Clock
) -> None:
    limits = QueueLimits(max_queued_per_owner=1)
    (first,) = await enqueue(backend, clock, new(owner="a"))
    (job,) = await backend.claim("w", 1, clock(), LEASE)
    await backend.enqueue([new(owner="a")], clock(), limits=limits)  # first is running
    assert await backend.finish([Outcome(lease_of(job), JobState.QUEUED, refund=True)], clock())
    with pytest.raises(QueueFull):  # first is queued again: two queued now
        await backend.enqueue([new(owner="a")], clock(), limits=limits)
    await backend.cancel(first, clock())
    with pytest.raises(QueueFull):  # still one queued
        await backend.enqueue([new(owner="a")], clock(), limits=limits)
    queued = await backend.list_jobs(JobFilter(owner="a", state=JobState.QUEUED))
    await backend.cancel(queued[0].id, clock())
    await backend.enqueue([new(owner="a")], clock(), limits=limits)


async def test_a_replayed_key_is_answered_even_when_the_queue_is_full(
    backend: Backend, clock: Clock
) -> None:
    limits = QueueLimits(max_queued=1, max_queued_per_owner=1)
    (created,) = await backend.enqueue([new(owner="a", key="k1")], clock(), limits=limits)
    (replay,) = await backend.enqueue([new(owner="a", key="k1")], clock(), limits=limits)
    assert (replay.created, replay.job.id) == (False, created.job.id)
    with pytest.raises(QueueFull):
        await backend.enqueue([new(owner="a", key="k2")], clock(), limits=limits)


async def test_concurrent_enqueues_never_pass_the_cap(backend: Backend, clock: Clock) -> None:
    limits = QueueLimits(max_queued=10, max_queued_per_owner=4)

    async def one(i: int) -> bool:
        try:
            await backend.enqueue([new(owner=f"o{i % 3}")], clock(), limits=limits)
        except QueueFull:
            return False
        return True

    accepted = sum(await asyncio.gather(*(one(i) for i in range(40))))
    stats = await backend.stats()
    assert accepted == stats.count(JobState.QUEUED) == 10
    for owner in ("o0", "o1", "o2"):
        assert len(await backend.list_jobs(JobFilter(owner=owner))) <= 4


async def test_a_heartbeat_of_more_leases_than_one_statement_takes_extends_them_all(
    backend: Backend, clock: Clock
) -> None:
    await backend.enqueue([new() for _ in range(450)], clock())
    running = await backend.claim("w1", 450, clock(), LEASE)
    leases = [lease_of(j) for j in running]
    lost = Lease(running[0].id, "not-the-token")
    clock.advance(LEASE - 1)
    beats = await backend.heartbeat([*leases, lost], clock(), LEASE)
    assert [b.held for b in beats] == [True] * 450 + [False]
    clock.advance(LEASE - 1)  # past the first lease, within the extended one
    assert await backend.recover_expired(clock()) == 0
