"""The in-memory reference backend: the contract in plain Python, for tests and examples.

The application's own SQL in :meth:`Jobs.transaction` runs on a private in-memory SQLite
database, committed or rolled back with the jobs of the transaction, so an app that writes its
rows and enqueues together is tested on ``memory://`` as it runs on SQLite. Nothing survives
the process; use SQLite or PostgreSQL for anything that must.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import TypeVar

from ... import fairness, rate
from ...models import (
    FINISHED_STATES,
    Dependencies,
    EnqueueResult,
    Job,
    JobEvent,
    JobFilter,
    JobState,
    Lease,
    NewJob,
    Progress,
    Stats,
    Why,
    WorkerRecord,
    transition,
)
from ..base import (
    ANY_SCOPE,
    Backend,
    BackendTransaction,
    ClaimScope,
    Heartbeat,
    Outcome,
    QueueLimits,
)
from ..rows import new_job_record, purge_states
from ..shared_sql import workers as workers_sql
from ..store_clock import StoreClock
from .claim import claim
from .dependencies import Graph
from .operator import MemoryOperator
from .transaction import MemoryTransaction
from .transitions import apply_outcome, expire, moved, requeued_fresh

T = TypeVar("T")


class MemoryBackend(Backend):
    scheme = "memory"

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._keys: dict[str, int] = {}
        self._next_id = 1
        self._watchers: list[Callable[[Collection[int] | None], None]] = []
        # Tags of the ready queued jobs (and of running ones, kept should they come back).
        self._tags: dict[int, float] = {}
        self._book = fairness.FairBook()
        self._rate_keys: dict[str, rate.KeyState] = {}
        self.operator = MemoryOperator(
            lambda: self._jobs.values(), lambda: (self._tags, self._paused, self._rate_keys)
        )
        # The application's tables (transactions' SQL): connected on first use; kept as an
        # image while the backend is closed, as its jobs are kept.
        self._app_db: sqlite3.Connection | None = None
        self._app_db_image: bytes | None = None
        self._workers: dict[str, WorkerRecord] = {}
        self._clock = StoreClock()  # a backward step of the caller's clock is clamped
        self._paused: dict[str, float] = {}  # queue -> when it was paused
        self._graph = Graph()  # dependencies between jobs

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        if self._app_db is not None:
            self._app_db_image = self._app_db.serialize()
            self._app_db.close()
            self._app_db = None

    def app_db(self) -> sqlite3.Connection:
        """The in-memory SQLite database of the application's statements (autocommit mode:
        a transaction begins and ends them explicitly)."""
        if self._app_db is None:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            if self._app_db_image is not None:
                conn.deserialize(self._app_db_image)
            self._app_db = conn
        return self._app_db

    def watch_finished(self, callback: Callable[[Collection[int] | None], None]) -> bool:
        if callback not in self._watchers:
            self._watchers.append(callback)
        return True

    def unwatch_finished(self, callback: Callable[[Collection[int] | None], None]) -> None:
        if callback in self._watchers:
            self._watchers.remove(callback)

    def _announce(self, job_ids: Collection[int]) -> None:
        if job_ids:
            for callback in tuple(self._watchers):
                callback(job_ids)

    async def enqueue(
        self, jobs: Sequence[NewJob], now: float, *, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]:
        return self.enqueue_now(jobs, self._clock.now(now), limits)

    def enqueue_now(
        self, jobs: Sequence[NewJob], now: float, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]:
        if limits is not None:
            self._check_limits(jobs, limits)
        results = []
        for new in jobs:
            if new.key is not None and new.key in self._keys:
                results.append(EnqueueResult(self._jobs[self._keys[new.key]], created=False))
                continue
            run_at = now if new.run_at is None else new.run_at
            job = new_job_record(new, self._next_id, now, run_at)
            if job.run_at <= now:
                self._tags[job.id] = self._book.tag(job.queue, job.priority, job.owner)
            self._next_id += 1
            self._jobs[job.id] = job
            if new.key is not None:
                self._keys[new.key] = job.id
            results.append(EnqueueResult(job, created=True))
        return results

    def _check_limits(self, jobs: Sequence[NewJob], limits: QueueLimits) -> None:
        """Raise before anything is stored if one of ``jobs`` would pass a cap."""
        queued = [j for j in self._jobs.values() if j.state is JobState.QUEUED]
        total = len(queued)
        owned: dict[str | None, int] = {}
        for job in queued:
            owned[job.owner] = owned.get(job.owner, 0) + 1
        keys: set[str] = set()
        for new in jobs:
            if new.key is not None and (new.key in self._keys or new.key in keys):
                continue
            if new.key is not None:
                keys.add(new.key)
            limits.check(total, owned.get(new.owner, 0) if new.owner is not None else 0)
            total += 1
            owned[new.owner] = owned.get(new.owner, 0) + 1

    async def claim(
        self,
        worker: str,
        limit: int,
        now: float,
        lease_seconds: float,
        scope: ClaimScope = ANY_SCOPE,
    ) -> list[Job]:
        now = self._clock.now(now)
        return claim(
            self._jobs,
            self._tags,
            self._book,
            worker,
            limit,
            now,
            lease_seconds,
            scope,
            self._paused,
            self._rate_keys,
        )

    def _held(self, lease: Lease) -> Job | None:
        job = self._jobs.get(lease.job_id)
        if job is None or job.state is not JobState.RUNNING or job.lease_token != lease.token:
            return None
        return job

    async def heartbeat(
        self,
        leases: Sequence[Lease],
        now: float,
        lease_seconds: float,
        progress: Sequence[tuple[Lease, Progress]] = (),
    ) -> list[Heartbeat]:
        now = self._clock.now(now)
        for lease, reported in progress:
            self._write_progress(lease, reported)
        beats = []
        for lease in leases:
            job = self._held(lease)
            if job is None:
                beats.append(Heartbeat(lease.job_id, held=False))
                continue
            self._jobs[job.id] = replace(job, lease_expires_at=now + lease_seconds)
            beats.append(Heartbeat(job.id, held=True, cancel_requested=job.cancel_requested))
        return beats

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        return self.finish_now(outcomes, self._clock.now(now))

    def finish_now(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        done = []
        for outcome in outcomes:
            if outcome.progress is not None:
                self._write_progress(outcome.lease, outcome.progress)
            job = self._held(outcome.lease)
            if job is None:
                done.append(False)
                continue
            self._jobs[job.id] = apply_outcome(job, outcome, now)
            if outcome.run_at is not None or outcome.state is not JobState.QUEUED:
                self._tags.pop(job.id, None)  # a new turn when it is due again
            done.append(True)
        ended = [
            o.lease.job_id
            for o, held in zip(outcomes, done, strict=True)
            if held and self._jobs[o.lease.job_id].state.finished
        ]
        self._announce(ended + self._resolve(ended))
        return done

    def _write_progress(self, lease: Lease, reported: Progress) -> None:
        """A running job's progress, where its lease is still held."""
        job = self._held(lease)
        if job is not None:
            self._jobs[job.id] = replace(
                job, progress=reported.fraction, progress_message=reported.message
            )

    def _resolve(self, ended: list[int]) -> list[int]:
        """Resolve the dependants of jobs that just ended (what the SQL backends' trigger
        does in the same transaction); the dependants cancelled, transitively."""
        cancelled = self._graph.resolve(self._jobs, ended)
        for job_id in cancelled:
            self._tags.pop(job_id, None)
        return cancelled

    def enqueue_after_now(
        self, jobs: Sequence[NewJob], after: Sequence[int], now: float, run_always: bool
    ) -> list[EnqueueResult]:
        order = self._graph.check(self._jobs, after)
        results = self.enqueue_now(jobs, now)
        for result in results:
            if result.created:
                self._tags.pop(result.job.id, None)  # tagged by the claim once ready
        return self._graph.attach(self._jobs, results, order, now, run_always)

    async def dependencies(self, job_id: int) -> Dependencies:
        return self._graph.dependencies(self._jobs, job_id)

    async def recover_expired(self, now: float) -> int:
        now = self._clock.now(now)
        expired = [
            j
            for j in self._jobs.values()
            if j.state is JobState.RUNNING and (j.lease_expires_at or 0) < now
        ]
        for job in expired:
            self._jobs[job.id] = expire(job, now)
        ended = [j.id for j in expired if self._jobs[j.id].state.finished]
        self._announce(ended + self._resolve(ended))
        return len(expired)

    async def run_transaction(self, func: Callable[[BackendTransaction], T], now: float) -> T:
        saved = dict(self._jobs), dict(self._keys), self._next_id, dict(self._tags)
        owners = dict(self._book.owners)
        graph = self._graph.copy() if self._graph.parents else None
        tx = MemoryTransaction(self, self._clock.now(now))
        try:
            value = func(tx)
            tx.commit_sql()
            return value
        except BaseException:
            self._jobs, self._keys, self._next_id, self._tags = saved
            self._book.owners = owners
            self._graph = graph or Graph()
            tx.rollback_sql()
            raise
        finally:
            tx.closed = True

    async def cancel(self, job_id: int, now: float, *, running: bool = True) -> Job | None:
        return self.cancel_now(job_id, self._clock.now(now), running=running)

    def cancel_now(self, job_id: int, now: float, *, running: bool = True) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if job.state in (JobState.QUEUED, JobState.WAITING):
            job = replace(
                job, state=moved(job.state, JobEvent.CANCELLED), finished_at=now, why=Why.CANCELLED
            )
            self._jobs[job_id] = job
            self._tags.pop(job_id, None)
            self._announce([job_id, *self._resolve([job_id])])
        elif job.state is JobState.RUNNING and running:
            job = replace(job, cancel_requested=True)
            self._jobs[job_id] = job
        return job

    async def retry(self, job_id: int, now: float) -> Job | None:
        now = self._clock.now(now)
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if transition(
            job.state, JobEvent.RETRIED_BY_OPERATOR
        ) is not None and self._graph.allows_retry(self._jobs, job_id):
            job = requeued_fresh(job, now)
            self._jobs[job_id] = job
            self._tags.pop(job_id, None)
        return job

    async def get(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    def job(self, job_id: int) -> Job | None:
        """A job as it is now (the transaction's read)."""
        return self._jobs.get(job_id)

    async def get_by_key(self, key: str) -> Job | None:
        job_id = self._keys.get(key)
        return None if job_id is None else self._jobs[job_id]

    async def list_jobs(self, flt: JobFilter) -> list[Job]:
        found = []
        for job in sorted(self._jobs.values(), key=lambda j: -j.id):
            if (
                (flt.state is None or job.state is flt.state)
                and (flt.priority is None or job.priority == flt.priority)
                and (flt.task is None or job.task == flt.task)
                and (flt.owner is None or job.owner == flt.owner)
                and (flt.queue is None or job.queue == flt.queue)
                and (flt.before_id is None or job.id < flt.before_id)
            ):
                found.append(job)
                if len(found) >= flt.limit:
                    break
        return found

    async def stats(self) -> Stats:
        counts: dict[tuple[JobState, int], int] = {}
        oldest: dict[int, float] = {}
        queues: dict[tuple[str, JobState], int] = {}
        for job in self._jobs.values():
            counts[(job.state, job.priority)] = counts.get((job.state, job.priority), 0) + 1
            queues[(job.queue, job.state)] = queues.get((job.queue, job.state), 0) + 1
            if job.state is JobState.QUEUED:
                oldest[job.priority] = min(
                    oldest.get(job.priority, job.enqueued_at), job.enqueued_at
                )
        return Stats(counts=counts, oldest_queued=oldest, queues=queues)

    async def ready_tasks(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for job in self._jobs.values():
            if job.state is JobState.QUEUED and job.id in self._tags:
                counts[(job.queue, job.task)] = counts.get((job.queue, job.task), 0) + 1
        return counts

    async def next_run_at(self, scope: ClaimScope = ANY_SCOPE) -> float | None:
        def counts(job: Job) -> bool:
            if job.id not in self._tags:  # not ready yet: when it will be
                return True
            return job.queue not in self._paused and (
                scope.queues is None or job.queue in scope.queues
            )

        queued = (j for j in self._jobs.values() if j.state is JobState.QUEUED and counts(j))
        return self._clock.local(min((self._ready_at(j) for j in queued), default=None))

    def _ready_at(self, job: Job) -> float:
        """When a queued job may start: its ``run_at``; for a ready job with a rate key, when
        its key's window opens."""
        if job.rate_key is None or job.id not in self._tags:
            return job.run_at
        return self._rate_keys.get(job.rate_key, rate.KeyState()).open_at

    async def pause(self, queue: str, now: float) -> bool:
        if queue in self._paused:
            return False
        self._paused[queue] = self._clock.now(now)
        return True

    async def resume(self, queue: str) -> bool:
        return self._paused.pop(queue, None) is not None

    async def paused(self) -> dict[str, float]:
        return dict(sorted(self._paused.items()))

    async def ready_kinds(self) -> set[tuple[str, int, str]]:
        return {(j.queue, j.priority, j.task) for j in self._ready()}

    async def ready_count(self, queue: str, priority: int, task: str) -> int:
        return sum(
            1 for j in self._ready() if (j.queue, j.priority, j.task) == (queue, priority, task)
        )

    def _ready(self) -> list[Job]:
        return [
            self._jobs[i]
            for i in self._tags
            if i in self._jobs and self._jobs[i].state is JobState.QUEUED
        ]

    async def register_worker(self, worker: WorkerRecord, now: float) -> None:
        cutoff = now - workers_sql.FORGET_AFTER
        self._workers = {k: w for k, w in self._workers.items() if w.expires_at >= cutoff}
        known = self._workers.get(worker.name)
        if known is not None:
            worker = replace(worker, started_at=known.started_at)
        self._workers[worker.name] = worker

    async def remove_worker(self, name: str) -> None:
        self._workers.pop(name, None)

    async def live_workers(self, now: float) -> list[WorkerRecord]:
        return [w for _, w in sorted(self._workers.items()) if w.expires_at >= now]

    async def purge(
        self, before: float, states: Collection[JobState] = FINISHED_STATES
    ) -> dict[JobState, int]:
        chosen = {JobState(s) for s in purge_states(states)}
        removed: dict[JobState, int] = {}
        for job in list(self._jobs.values()):
            if (
                job.state in chosen
                and job.finished_at is not None
                and job.finished_at < before
                and not self._graph.keeps(self._jobs, job.id)
            ):
                del self._jobs[job.id]
                self._graph.forget(job.id)
                self._tags.pop(job.id, None)
                if job.key is not None:
                    self._keys.pop(job.key, None)
                removed[job.state] = removed.get(job.state, 0) + 1
        for key in self._book.idle_owners():
            del self._book.owners[key]
        return removed
