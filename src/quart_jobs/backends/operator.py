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
from collections.abc import Sequence

from ..models import JobState, Stats, Waiting, WorkerRecord


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
    async def waiting_jobs(self, now: float, workers: Sequence[WorkerRecord]) -> Waiting:
        """Jobs that are not starting at ``now``, by queue and the first reason that holds each
        (:class:`~quart_jobs.models.WaitReason`, in its order): waiting for other jobs, not
        due, paused queue, served by none of the live ``workers``, rate key closed, concurrency
        key at its limit. Each count is a capped read (:attr:`Waiting.at_least`); SQL stores
        answer from partial indexes and small tables, a few seeks and range counts."""
