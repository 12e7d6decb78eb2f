"""The in-memory operator store: admin sessions in a dict, counts read from the backend's
jobs as they are now."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from ...models import Job, JobState, Stats, Waiting, WaitReason, WorkerRecord
from ...rate import KeyState
from ..operator import OperatorStore, StartedWaits, started_waits_of

#: What the memory backend holds beside its jobs and a claim reads: the ready jobs' tags, the
#: paused queues, the rate keys' rows.
ClaimState = tuple[Mapping[int, float], Mapping[str, float], Mapping[str, KeyState]]


class MemoryOperator(OperatorStore):
    def __init__(
        self, jobs: Callable[[], Iterable[Job]], claim_state: Callable[[], ClaimState]
    ) -> None:
        self._jobs = jobs  # the backend's jobs now (a rolled-back transaction replaces them)
        self._claim_state = claim_state
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

    async def started_waits(
        self, since: float, bucket_seconds: float, owners: int, now: float | None = None
    ) -> StartedWaits:
        return started_waits_of(self._jobs(), since, bucket_seconds, owners, now)

    async def waiting_jobs(self, now: float, workers: Sequence[WorkerRecord]) -> Waiting:
        tags, paused, keys = self._claim_state()
        jobs = list(self._jobs())
        running: dict[str, int] = {}
        for job in jobs:
            if job.state is JobState.RUNNING and job.concurrency_key is not None:
                running[job.concurrency_key] = running.get(job.concurrency_key, 0) + 1
        counts: dict[tuple[str, WaitReason], int] = {}
        for job in jobs:
            reason = _reason(job, now, job.id in tags, paused, workers, keys, running)
            if reason is not None:
                counts[(job.queue, reason)] = counts.get((job.queue, reason), 0) + 1
        return Waiting(counts)


def _reason(
    job: Job,
    now: float,
    tagged: bool,
    paused: Mapping[str, float],
    workers: Sequence[WorkerRecord],
    keys: Mapping[str, KeyState],
    running: Mapping[str, int],
) -> WaitReason | None:
    """The first reason that holds ``job`` (``None``: it is not held, or has started or ended).
    A queued job that came due but is not tagged yet is held by nothing (the next claim tags
    it), as the SQL stores count it."""
    if job.state is JobState.WAITING:
        return WaitReason.DEPENDENCY
    if job.state is not JobState.QUEUED:
        return None
    if not tagged:
        return WaitReason.NOT_DUE if job.run_at > now else None
    if job.queue in paused:
        return WaitReason.PAUSED
    if not any(w.serves(job.queue, job.task) for w in workers):
        return WaitReason.UNSERVED
    if job.rate_key is not None and keys.get(job.rate_key, KeyState()).open_at > now:
        return WaitReason.RATE_LIMIT
    key, limit = job.concurrency_key, job.concurrency_limit
    if key is not None and limit is not None and running.get(key, 0) >= limit:
        return WaitReason.CONCURRENCY
    return None
