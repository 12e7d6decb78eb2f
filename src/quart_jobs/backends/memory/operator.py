"""The in-memory operator store: admin sessions in a dict, counts read from the backend's
jobs as they are now."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ...models import Job, JobState, Stats
from ..operator import OperatorStore, StartedWaits, started_waits_of


class MemoryOperator(OperatorStore):
    def __init__(self, jobs: Callable[[], Iterable[Job]]) -> None:
        self._jobs = jobs  # the backend's jobs now (a rolled-back transaction replaces them)
        self._sessions: dict[str, float] = {}

    async def create_session(self, session_id: str, expires_at: float, now: float) -> None:
        self._sessions = {k: t for k, t in self._sessions.items() if t >= now}
        self._sessions[session_id] = expires_at

    async def session_active(self, session_id: str, now: float) -> bool:
        return self._sessions.get(session_id, float("-inf")) >= now

    async def end_session(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def probe_write(self, now: float) -> None:
        return None

    async def queue_gauges(self) -> Stats:
        counts: dict[tuple[JobState, int], int] = {}
        oldest: dict[int, float] = {}
        for job in self._jobs():
            if job.state in (JobState.QUEUED, JobState.RUNNING):
                counts[(job.state, job.priority)] = counts.get((job.state, job.priority), 0) + 1
            if job.state is JobState.QUEUED:
                first = oldest.get(job.priority, job.enqueued_at)
                oldest[job.priority] = min(first, job.enqueued_at)
        return Stats(counts=counts, oldest_queued=oldest)

    async def finished_counts(
        self, since: float, bucket_seconds: float
    ) -> dict[tuple[int, JobState], int]:
        counts: dict[tuple[int, JobState], int] = {}
        for job in self._jobs():
            if job.state.finished and job.finished_at is not None and job.finished_at >= since:
                bucket = (int((job.finished_at - since) // bucket_seconds), job.state)
                counts[bucket] = counts.get(bucket, 0) + 1
        return counts

    async def started_waits(self, since: float, bucket_seconds: float, owners: int) -> StartedWaits:
        return started_waits_of(self._jobs(), since, bucket_seconds, owners)
