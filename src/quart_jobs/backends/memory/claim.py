"""Where a job is claimed on the memory backend: ready jobs tagged as they come due, and the
next starts picked by :mod:`quart_jobs.fairness` from each tier's jobs in ``(tag, id)`` order, as
the SQL backends do (one process here: no lock)."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import replace

from ... import fairness, rate
from ...models import Job, JobEvent, JobState
from ..base import ClaimScope
from ..rows import Candidate
from .transitions import moved


def claim(
    jobs: dict[int, Job],
    tags: dict[int, float],
    book: fairness.FairBook,
    worker: str,
    limit: int,
    now: float,
    lease_seconds: float,
    scope: ClaimScope,
    paused: Collection[str] = (),
    keys: dict[str, rate.KeyState] | None = None,
) -> list[Job]:
    """Claim up to ``limit`` jobs of ``jobs`` (changed in place); ``tags`` holds the tags of
    the ready ones, ``book`` the tier clocks and the owners' next tags. Jobs of the ``paused``
    queues stay queued; their tiers are left out, as the SQL backends leave them out. ``keys``
    holds the rate keys' logs (changed in place)."""
    keys = {} if keys is None else keys
    tag_due(jobs, tags, book, now)

    def allowed(queue: str) -> bool:
        return queue not in paused and (scope.queues is None or queue in scope.queues)

    heads: dict[tuple[str, int], list[Candidate]] = {}
    running: dict[str, int] = {}
    for job in jobs.values():
        if job.state is JobState.RUNNING and job.concurrency_key is not None:
            running[job.concurrency_key] = running.get(job.concurrency_key, 0) + 1
        if job.state is not JobState.QUEUED or job.id not in tags:
            continue
        if job.rate_key is not None and job.rate_key in keys and keys[job.rate_key].open_at > now:
            continue  # its key's window is full: as the SQL backends, not even read
        if (scope.tasks is None or job.task in scope.tasks) and allowed(job.queue):
            heads.setdefault((job.queue, job.priority), []).append(_candidate(job, tags))
    for candidates in heads.values():
        candidates.sort(key=lambda c: (c.tag, c.id))
    clocks = [c for c in book.clocks.values() if allowed(c.queue)]
    now = fairness.claim_time(clocks, now)  # as the SQL backends do (one process here)
    limits = rate.limits_of(c for found in heads.values() for c in found)
    if limits:
        now = rate.floor({k: keys[k] for k in limits if k in keys}, now)
    budgets = rate.budgets(limits, keys, now)
    queues = {c.queue for c in clocks} | {queue for queue, _ in heads}
    chosen = book.start(heads, limit, scope.weights, now, running, queues, budgets)
    keys.update(rate.settle(limits, keys, rate.started(chosen), now))
    claimed = []
    for candidate in chosen:
        job = jobs[candidate.id]
        running_job = replace(
            job,
            state=moved(job.state, JobEvent.STARTED),
            attempts=job.attempts + 1,
            started_at=now,
            worker=worker,
            lease_token=secrets.token_hex(8),
            lease_expires_at=now + lease_seconds,
        )
        jobs[job.id] = running_job
        claimed.append(running_job)
    return claimed


def tag_due(
    jobs: dict[int, Job], tags: dict[int, float], book: fairness.FairBook, now: float
) -> None:
    """Tag the queued jobs that became ready (delayed, retried), in the order they did."""
    due = [
        j
        for j in jobs.values()
        if j.state is JobState.QUEUED and j.id not in tags and j.run_at <= now
    ]
    for job in sorted(due, key=lambda j: (j.run_at, j.id)):
        tags[job.id] = book.tag(job.queue, job.priority, job.owner)


def _candidate(job: Job, tags: dict[int, float]) -> Candidate:
    limit = job.rate_limit
    return Candidate(
        job.id,
        job.queue,
        job.priority,
        tags[job.id],
        job.concurrency_key,
        job.concurrency_limit,
        job.rate_key,
        None if limit is None else limit.n,
        None if limit is None else limit.period,
    )
