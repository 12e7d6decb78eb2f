"""Rate limits in every backend, on the injected clock: never more than N starts with a key in
any window of the period (by the stored ``started_at``), the rest queued and uncharged, no
head-of-line blocking, the next opening reported, and composition with tiers, owners and
concurrency keys."""

from __future__ import annotations

import pytest

from quart_jobs.backends import Backend, Outcome
from quart_jobs.models import Job, JobState, Lease, NewJob, Tier
from quart_jobs.rate import RateLimit, margin

from ..conftest import Clock

LEASE = 30.0
FIVE_PER_SECOND = RateLimit(5, 1.0)


def rated(key: str = "k", limit: RateLimit = FIVE_PER_SECOND, **kw: object) -> NewJob:
    return NewJob(task=str(kw.pop("task", "t")), rate_key=key, rate_limit=limit, **kw)  # type: ignore[arg-type]


async def enqueue(backend: Backend, clock: Clock, jobs: list[NewJob]) -> list[int]:
    return [r.job.id for r in await backend.enqueue(jobs, clock())]


async def claim(backend: Backend, clock: Clock, limit: int = 10) -> list[Job]:
    return await backend.claim("w", limit, clock(), LEASE)


def assert_windows_hold(starts: list[float], limit: RateLimit) -> None:
    """Every half-open window [a, a + period) holds at most n starts (each start is a
    window's left edge: the fullest windows begin at a start)."""
    ordered = sorted(starts)
    for a in ordered:
        inside = [t for t in ordered if a <= t < a + limit.period]
        assert len(inside) <= limit.n, f"{len(inside)} starts in [{a}, {a + limit.period})"


async def test_never_more_than_n_starts_in_any_window_and_the_rest_wait_uncharged(
    backend: Backend, clock: Clock
) -> None:
    ids = await enqueue(backend, clock, [rated() for _ in range(50)])
    starts: list[float] = []
    for step in (0.0, 0.3, 0.69, 0.01, 0.01, 0.5, 0.49, 0.02, 0.001, 1.2, 0.3, 0.4):
        clock.advance(step)
        for job in await claim(backend, clock):
            assert job.started_at is not None
            starts.append(job.started_at)
    assert_windows_hold(starts, FIVE_PER_SECOND)
    assert 10 <= len(starts) <= 20  # the limit is reached, window after window
    waiting = [await backend.get(i) for i in ids]
    left = [j for j in waiting if j is not None and j.state is JobState.QUEUED]
    assert len(left) == 50 - len(starts)
    assert all(j.attempts == 0 for j in left)


async def test_a_closed_keys_backlog_holds_up_no_other_key_and_no_unkeyed_job(
    backend: Backend, clock: Clock
) -> None:
    """1,000 ready jobs of a closed key A, then 3 of key B and 3 without a key, in the same
    queue, priority and task: one claim of 6 returns those 6."""
    first = await enqueue(backend, clock, [rated("A") for _ in range(5)])
    assert sorted(j.id for j in await claim(backend, clock, 5)) == first  # A is closed now
    await enqueue(backend, clock, [rated("A") for _ in range(1000)])
    others = await enqueue(backend, clock, [rated("B") for _ in range(3)])
    others += await enqueue(backend, clock, [NewJob(task="t") for _ in range(3)])
    assert sorted(j.id for j in await claim(backend, clock, 6)) == others


async def test_next_run_at_is_the_keys_opening_when_only_its_jobs_wait(
    backend: Backend, clock: Clock
) -> None:
    await enqueue(backend, clock, [rated() for _ in range(8)])
    started = await claim(backend, clock)
    assert len(started) == 5
    start = started[0].started_at
    assert start is not None
    next_at = await backend.next_run_at()
    assert next_at is not None
    # The key opens a period (and the margin) after the starts, on the caller's clock.
    assert next_at == pytest.approx(start + 1.0 + margin(1.0), abs=1e-6)
    clock.advance(next_at - clock() - 0.001)
    assert await claim(backend, clock) == []
    clock.advance(0.002)
    assert len(await claim(backend, clock)) == 3


async def test_a_vip_tier_keeps_nine_of_ten_starts_of_a_shared_key(
    backend: Backend, clock: Clock
) -> None:
    limit = RateLimit(10, 1.0)
    vip = set(
        await enqueue(
            backend, clock, [rated(limit=limit, priority=int(Tier.VIP)) for _ in range(100)]
        )
    )
    await enqueue(backend, clock, [rated(limit=limit) for _ in range(100)])
    starts: list[Job] = []
    for _ in range(10):
        starts += await claim(backend, clock, 20)
        clock.advance(1.0 + margin(1.0) + 0.001)
    assert len(starts) == 100
    assert_windows_hold([j.started_at or 0.0 for j in starts], limit)
    assert sum(1 for j in starts if j.id in vip) == 90


async def test_a_rate_key_and_a_concurrency_key_both_hold(backend: Backend, clock: Clock) -> None:
    await enqueue(
        backend,
        clock,
        [rated(concurrency_key="c", concurrency_limit=2) for _ in range(20)],
    )
    starts: list[float] = []
    for _ in range(4):  # within one window: two at a time, five in all
        running = await claim(backend, clock)
        assert len(running) <= 2
        starts += [j.started_at or 0.0 for j in running]
        for job in running:
            await backend.finish(
                [Outcome(_lease(job), JobState.SUCCEEDED, result="null")],
                clock(),
            )
        clock.advance(0.01)
    assert len(starts) == 5
    assert_windows_hold(starts, FIVE_PER_SECOND)


def _lease(job: Job) -> Lease:
    assert job.lease_token is not None
    return Lease(job.id, job.lease_token)


async def test_owners_of_one_key_take_turns(backend: Backend, clock: Clock) -> None:
    xs = await enqueue(backend, clock, [rated(owner="x") for _ in range(5)])
    ys = await enqueue(backend, clock, [rated(owner="y") for _ in range(5)])
    started = [j.id for j in await claim(backend, clock)]
    assert started == [xs[0], ys[0], xs[1], ys[1], xs[2]]


async def test_a_clock_stepped_back_admits_no_excess_and_resumes_after(
    backend: Backend, clock: Clock
) -> None:
    await enqueue(backend, clock, [rated() for _ in range(20)])
    starts = [j.started_at or 0.0 for j in await claim(backend, clock)]
    assert len(starts) == 5
    clock.advance(-10.0)
    for _ in range(5):
        clock.advance(0.5)
        starts += [j.started_at or 0.0 for j in await claim(backend, clock)]
    assert len(starts) <= 10  # at most one more window's worth, never more in any window
    assert_windows_hold(starts, FIVE_PER_SECOND)
    clock.advance(20.0)  # the clock is past the step: the key runs again
    assert len(await claim(backend, clock)) == 5


async def test_a_retry_charges_the_window_and_a_refund_does_not_give_it_back(
    backend: Backend, clock: Clock
) -> None:
    await enqueue(backend, clock, [rated(max_attempts=3) for _ in range(6)])
    running = await claim(backend, clock)
    assert len(running) == 5
    await backend.finish(
        [Outcome(_lease(j), JobState.QUEUED, refund=True) for j in running], clock()
    )
    clock.advance(0.1)
    assert await claim(backend, clock) == []  # the put-back attempts still count
    clock.advance(1.0)
    assert len(await claim(backend, clock)) == 5
