"""The operations of a :class:`~quart_jobs.Jobs` on the jobs and queues in its store, each
with what follows it in this process: an enqueue (built by the job builder) and a transaction
of the application's wake the workers here and tell the ``enqueued`` hooks after the commit; a
cancel reaches the worker here that runs the job; a retry asks the retry guards first; resuming
a queue wakes the workers. An id no job can have is answered without asking the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from .backends.base import QueueLimits, queue_names
from .builder import Calls, EnqueueOptions, JobBuilder
from .errors import JobNotFound, RetryRefused
from .events import JobEvents
from .local_workers import LocalWorkers
from .models import (
    Dependencies,
    EnqueueResult,
    Job,
    JobEvent,
    JobState,
    Stats,
    UnservedTask,
    WorkerRecord,
    job_id_in_range,
)
from .store_handle import StoreHandle
from .tracing import HOOKS, Producing
from .transaction import Transaction, run_transaction
from .unserved import read_serving

T = TypeVar("T")

#: Asked before a retry: ``None`` allows it, a reason refuses it.
RetryGuard = Callable[[Job], Awaitable[str | None]]


def _not_found(job_id: int) -> JobNotFound:
    return JobNotFound(f"no job has id {job_id}")


class JobOperations:
    """Enqueue, run a transaction, read, cancel and retry jobs, pause and resume queues, on
    ``handle``'s store at the builder's clock. ``retry_guards`` is the list of
    ``jobs.retry_guards`` itself."""

    def __init__(
        self,
        handle: StoreHandle,
        builder: JobBuilder,
        events: JobEvents,
        workers: LocalWorkers,
        retry_guards: list[RetryGuard],
    ) -> None:
        self._handle = handle
        self._builder = builder
        self._events = events
        self._workers = workers
        self._retry_guards = retry_guards

    async def enqueue_many(
        self, calls: Calls, options: EnqueueOptions | None = None
    ) -> list[EnqueueResult]:
        if options is not None and options.after is not None:  # jobs that wait for others
            return await self.transaction(lambda tx: tx.enqueue_many(calls, options))
        new = self._builder.build_all(calls, options)
        limits = self._builder.limits(options)
        if HOOKS.enqueue is None:
            results = await self._handle.backend.enqueue(new, self._builder.clock(), limits=limits)
        else:
            results = await self._enqueue_traced(HOOKS.enqueue(new, False), limits)
        self._workers.notify()
        self._events.each(JobEvent.ENQUEUED, (result.job for result in results if result.created))
        return results

    async def _enqueue_traced(
        self, producing: Producing, limits: QueueLimits | None
    ) -> list[EnqueueResult]:
        """Enqueue the jobs of ``producing``, which carry its trace context, and end it."""
        try:
            results = await self._handle.backend.enqueue(
                producing.jobs, self._builder.clock(), limits=limits
            )
        except BaseException as exc:
            producing.end(None, exc)
            raise
        producing.end(results, None)
        return results

    async def transaction(self, func: Callable[[Transaction], T]) -> T:
        store, now = self._handle.backend, self._builder.clock()
        value, done = await run_transaction(store, self._builder, func, now)
        for tx in done:
            if tx.created:
                self._workers.notify()
            self._events.each(JobEvent.ENQUEUED, tx.created)
            self._events.each(JobEvent.CANCELLED, tx.cancelled)
        return value

    async def find(self, job_id: int) -> Job | None:
        if not job_id_in_range(job_id):
            return None
        return await self._handle.backend.get(job_id)

    async def get(self, job_id: int) -> Job:
        job = await self.find(job_id)
        if job is None:
            raise _not_found(job_id)
        return job

    async def dependencies(self, job_id: int) -> Dependencies:
        if not job_id_in_range(job_id):
            raise _not_found(job_id)
        return await self._handle.backend.dependencies(job_id)

    async def cancel(self, job_id: int, *, running: bool) -> Job:
        if not job_id_in_range(job_id):
            raise _not_found(job_id)
        now = self._builder.clock()
        job = await self._handle.backend.cancel(job_id, now, running=running)
        if job is None:
            raise _not_found(job_id)
        if job.state is JobState.CANCELLED and job.finished_at == now:
            self._events.emit(JobEvent.CANCELLED, job, None)  # cancelled by this call, while queued
        if job.state is JobState.RUNNING and running:
            await self._workers.cancel_running(job_id)
        return job

    async def retry(self, job_id: int) -> Job:
        if not job_id_in_range(job_id):
            raise _not_found(job_id)
        if self._retry_guards:
            current = await self.get(job_id)
            for guard in self._retry_guards:
                refusal = await guard(current)
                if refusal:
                    raise RetryRefused(refusal)
        job = await self._handle.backend.retry(job_id, self._builder.clock())
        if job is None:
            raise _not_found(job_id)
        self._workers.notify()
        return job

    async def pause(self, queue: str) -> bool:
        return await self._handle.backend.pause(queue_names([queue])[0], self._builder.clock())

    async def resume(self, queue: str) -> bool:
        resumed = await self._handle.backend.resume(queue_names([queue])[0])
        self._workers.notify()
        return resumed

    async def paused(self) -> set[str]:
        return set(await self._handle.backend.paused())

    async def stats(self) -> Stats:
        stats = await self._handle.backend.stats()
        workers, unserved = await self.serving()
        paused = await self._handle.backend.paused()
        waiting = await self._handle.backend.operator.waiting_jobs(self._builder.clock(), workers)
        return replace(
            stats, workers=tuple(workers), unserved=tuple(unserved), paused=paused, waiting=waiting
        )

    async def serving(self) -> tuple[list[WorkerRecord], list[UnservedTask]]:
        return await read_serving(self._handle.backend, self._builder.clock())
