"""The operator store: what the admin, ``/metrics`` and a readiness check read and write beside
the jobs, in the same database. Admin sessions, the write probe, the cheap queue gauges and the
throughput counts are not queue operations, so they stay out of the
:class:`~quart_jobs.backends.base.Backend` contract; every backend has one of these as its
``operator`` (``backends/<kind>/operator.py``), and an application reaches it as
:attr:`Jobs.operator <quart_jobs.Jobs.operator>`.

Times are seconds since the epoch on the caller's clock, as in the backend contract.
"""

from __future__ import annotations

import abc
import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..models import Job, JobState, Stats, Waiting, WorkerRecord

#: Upper bounds (seconds) of the wait buckets the dashboard's percentiles are read from: a
#: 1-2-5 scale from 10 ms to a day. A wait falls in the first bucket whose bound is at least
#: the wait; one past the last bound is the overflow bucket (waits over a day).
WAIT_BOUNDS: tuple[float, ...] = (
    *(m * 10.0**e for e in range(-2, 5) for m in (1, 2, 5)),
    86400.0,
)


def wait_slot(wait: float) -> int:
    """The index of the bucket of :data:`WAIT_BOUNDS` that holds ``wait``."""
    return bisect.bisect_left(WAIT_BOUNDS, wait)


@dataclass(frozen=True, slots=True)
class OwnerWait:
    """One owner's jobs of a tier: the longest wait among those started since the window began
    (``jobs`` of them) and those ready and still queued (``waiting`` of them, counted in the
    sample of the :data:`WAITING_SAMPLE` ready jobs queued longest; their wait so far)."""

    priority: int
    owner: str
    longest: float
    jobs: int
    waiting: int = 0


#: The ready queued jobs whose waits count toward :attr:`StartedWaits.owners`: those queued
#: longest (the first ids), so the read stays bounded under any backlog.
WAITING_SAMPLE = 1000


@dataclass(frozen=True, slots=True)
class StartedWaits:
    """The waits of the jobs that started since ``since`` (each job's latest attempt): the wait
    is ``started_at - max(enqueued_at, run_at)``.

    ``counts[(bucket, priority, slot)]`` is how many jobs of that priority started in time
    bucket ``bucket`` (``[since + i * bucket_seconds, ...)``) with a wait in :data:`WAIT_BOUNDS`
    slot ``slot`` (absent: none). ``owners`` holds, per priority, the owners whose longest wait
    was the longest, longest first (ties by owner name), at most the number asked."""

    counts: dict[tuple[int, int, int], int] = field(default_factory=dict)
    owners: list[OwnerWait] = field(default_factory=list)


def started_waits_of(
    jobs: Iterable[Job],
    since: float,
    bucket_seconds: float,
    owners: int,
    now: float | None = None,
) -> StartedWaits:
    """:class:`StartedWaits` computed from jobs in memory (the memory store; and the reference
    the SQL stores' statements are tested against)."""
    counts: dict[tuple[int, int, int], int] = {}
    by_owner: dict[tuple[int, str], tuple[float, int, int]] = {}
    jobs = list(jobs)
    if now is not None:
        ready = sorted(
            (j for j in jobs if j.state is JobState.QUEUED and j.run_at <= now),
            key=lambda j: j.id,
        )
        for job in ready[:WAITING_SAMPLE]:
            if job.owner is not None:
                wait = now - max(job.enqueued_at, job.run_at)
                longest, n, w = by_owner.get((job.priority, job.owner), (float("-inf"), 0, 0))
                by_owner[(job.priority, job.owner)] = (max(longest, wait), n, w + 1)
    for job in jobs:
        started = job.started_at
        if started is None or started < since:
            continue
        if job.state is not JobState.RUNNING and not job.state.finished:
            continue  # queued again for another attempt: its next start counts
        wait = started - max(job.enqueued_at, job.run_at)
        key = (int((started - since) // bucket_seconds), job.priority, wait_slot(wait))
        counts[key] = counts.get(key, 0) + 1
        if job.owner is not None:
            longest, n, w = by_owner.get((job.priority, job.owner), (float("-inf"), 0, 0))
            by_owner[(job.priority, job.owner)] = (max(longest, wait), n + 1, w)
    ranked = sorted(by_owner.items(), key=lambda item: (item[0][0], -item[1][0], item[0][1]))
    top: list[OwnerWait] = []
    shown: dict[int, int] = {}
    for (priority, owner), (longest, n, w) in ranked:
        if shown.get(priority, 0) < owners:
            shown[priority] = shown.get(priority, 0) + 1
            top.append(OwnerWait(priority, owner, longest, n, w))
    return StartedWaits(counts, top)


class OperatorStore(abc.ABC):
    """Admin sessions, the write probe and the dashboard's counts of one store."""

    @abc.abstractmethod
    async def create_session(self, session_id: str, expires_at: float, now: float) -> None:
        """Store an admin session (``session_id`` is a digest, never the cookie itself) and drop
        sessions that expired before ``now``."""

    @abc.abstractmethod
    async def session_active(self, session_id: str, now: float) -> bool:
        """Whether the session exists and has not expired at ``now``."""

    @abc.abstractmethod
    async def end_session(self, session_id: str) -> None:
        """Delete the session (logout); nothing happens for an unknown one."""

    @abc.abstractmethod
    async def probe_write(self, now: float) -> None:
        """Write and commit a small row (a page's worth), to tell whether the store accepts
        writes; raise :class:`~quart_jobs.errors.BackendUnavailable` when it does not."""

    @abc.abstractmethod
    async def queue_gauges(self) -> Stats:
        """Queued and running counts by priority, and the oldest queued job's enqueue time per
        priority: what ``/metrics`` reports. SQL stores answer from their partial indexes
        (their cost grows with the queued and running jobs, never with finished ones)."""

    @abc.abstractmethod
    async def finished_counts(
        self, since: float, bucket_seconds: float
    ) -> dict[tuple[int, JobState], int]:
        """Jobs that reached an end state at or after ``since``, counted by bucket and state.

        Bucket ``i`` holds the jobs whose ``finished_at`` lies in
        ``[since + i * bucket_seconds, since + (i + 1) * bucket_seconds)`` (throughput charts).
        Buckets with no jobs are absent."""

    @abc.abstractmethod
    async def started_waits(
        self, since: float, bucket_seconds: float, owners: int, now: float | None = None
    ) -> StartedWaits:
        """How long the jobs that started at or after ``since`` had waited, by time bucket,
        priority and wait slot, and the ``owners`` owners per priority who waited longest
        (:class:`StartedWaits`). Jobs still queued are not in the counts (the queue gauges'
        oldest waiting job covers them); with ``now``, the ready jobs queued longest (at most
        :data:`WAITING_SAMPLE`) count toward the owners with their wait so far. SQL stores
        read the jobs finished since ``since`` through their ``finished_at`` index (as
        :meth:`finished_counts` does), the running ones through the lease index and the
        sample through the first ids of the state index: the cost grows with the jobs of the
        window, never with older ones nor with the backlog."""

    @abc.abstractmethod
    async def waiting_jobs(self, now: float, workers: Sequence[WorkerRecord]) -> Waiting:
        """Jobs that are not starting at ``now``, by queue and the first reason that holds each
        (:class:`~quart_jobs.models.WaitReason`, in its order): waiting for other jobs, not
        due, paused queue, served by none of the live ``workers``, rate key closed, concurrency
        key at its limit. Each count is a capped read (:attr:`Waiting.at_least`); SQL stores
        answer from partial indexes and small tables, a few seeks and range counts."""
