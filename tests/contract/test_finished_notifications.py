"""The backend contract for finished-job notifications (``watch_finished``, what ``jobs.wait``
sleeps on), over every backend: those that notify announce every end state, and only those."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from quart_jobs.backends import Backend, Outcome
from quart_jobs.models import JobState, Lease, NewJob

from ..conftest import Clock

LEASE = 30.0


class Seen:
    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.everything = 0
        self.news = asyncio.Event()

    def __call__(self, job_ids: Collection[int] | None) -> None:
        if job_ids is None:
            self.everything += 1
        else:
            self.ids |= set(job_ids)
        self.news.set()

    async def listening(self, backend: Backend) -> None:
        """PostgreSQL LISTENs on its own connection: it says "read again" once connected."""
        if backend.scheme == "postgresql":
            async with asyncio.timeout(10):
                while not self.everything:
                    self.news.clear()
                    await self.news.wait()

    async def until(self, *ids: int) -> None:
        async with asyncio.timeout(10):
            while not set(ids) <= self.ids:
                self.news.clear()
                await self.news.wait()


async def running(backend: Backend, clock: Clock, count: int) -> list[Lease]:
    await backend.enqueue([NewJob(task="t", max_attempts=1) for _ in range(count)], clock())
    claimed = await backend.claim("w", count, clock(), LEASE)
    return [Lease(j.id, j.lease_token or "") for j in claimed]


async def test_end_states_are_announced_to_watchers(backend: Backend, clock: Clock) -> None:
    seen = Seen()
    if not backend.watch_finished(seen):
        assert backend.scheme == "sqlite"  # waiters read SQLite again instead
        return
    try:
        await seen.listening(backend)
        done, failed, cancelled, retried, refunded = await running(backend, clock, 5)
        assert (
            await backend.finish(
                [
                    Outcome(done, JobState.SUCCEEDED),
                    Outcome(failed, JobState.FAILED, error="x"),
                    Outcome(cancelled, JobState.CANCELLED),
                    Outcome(retried, JobState.FAILED, error="x", run_at=clock() + 60),
                    Outcome(refunded, JobState.QUEUED, refund=True),
                ],
                clock(),
            )
            == [True] * 5
        )
        await seen.until(done.job_id, failed.job_id, cancelled.job_id)
        assert retried.job_id not in seen.ids and refunded.job_id not in seen.ids
        (queued,) = await backend.enqueue([NewJob(task="t")], clock())
        await backend.cancel(queued.job.id, clock())
        await seen.until(queued.job.id)
        (again,) = await backend.claim("w", 1, clock(), LEASE)  # the refunded job
        assert again.id == refunded.job_id
        clock.advance(LEASE + 1)
        assert await backend.recover_expired(clock()) == 1  # out of attempts: failed
        async with asyncio.timeout(10):
            while again.id not in seen.ids and seen.everything < 2:
                seen.news.clear()
                await seen.news.wait()
    finally:
        backend.unwatch_finished(seen)


async def test_a_watcher_that_left_hears_nothing_more(backend: Backend, clock: Clock) -> None:
    first, second = Seen(), Seen()
    if not backend.watch_finished(first):
        return
    backend.watch_finished(second)
    backend.unwatch_finished(first)
    try:
        await second.listening(backend)
        (lease,) = await running(backend, clock, 1)
        await backend.finish([Outcome(lease, JobState.SUCCEEDED)], clock())
        await second.until(lease.job_id)
        assert lease.job_id not in first.ids
    finally:
        backend.unwatch_finished(second)
