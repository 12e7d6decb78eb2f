"""The workers a :class:`~quart_jobs.Jobs` runs in this process, and the loops that run beside
a long-running one: the periodic scheduler (while such a worker runs) and retention (until the
``Jobs`` is closed). ``jobs.start_worker()``, ``jobs.run_worker()`` and ``jobs.drain()`` come
through here; a burst worker (the test-mode drain) starts neither loop.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from .backends.base import Backend, queue_names
from .builder import JobBuilder
from .events import EventHook
from .maintenance.retention import Retention
from .models import DEFAULT_QUEUE, JobState
from .periodic import Schedules
from .registry import Registry
from .testing import Drained, burst_drain
from .worker import Worker
from .worker_settings import WorkerSettings

log = logging.getLogger("quart_jobs")

#: Entered around every job (the Quart extension: an app context).
JobContext = Callable[[], contextlib.AbstractAsyncContextManager[Any]]
#: Deletes the finished jobs older than its argument (``jobs.purge``).
Purge = Callable[[float], Awaitable[dict[JobState, int]]]


class LocalWorkers:
    """The workers started in this process (by :meth:`start`, until :meth:`stop`), the
    scheduler of ``schedules`` while a long-running one is among them, and retention."""

    def __init__(self, registry: Registry, schedules: Schedules, builder: JobBuilder) -> None:
        self._registry = registry
        self._builder = builder
        self._schedules = schedules
        self._workers: list[Worker] = []
        self._retention: Retention | None = None

    def settings(self, base: WorkerSettings, overrides: Mapping[str, Any]) -> WorkerSettings:
        """``base`` with ``overrides`` (:class:`WorkerSettings` fields; ``queues`` checked)."""
        changes = dict(overrides)
        if changes.get("queues") is not None:
            changes["queues"] = queue_names(changes["queues"])
        settings = replace(base, **changes)
        self._warn_unused_queues(settings.queues)
        return settings

    def _warn_unused_queues(self, queues: Sequence[str] | None) -> None:
        """A worker told to claim from a queue that no registered task uses is most often a
        typo: it waits there for jobs that only ``options(queue=…)`` could send."""
        known = self._registry.queues(DEFAULT_QUEUE)
        unused = [q for q in queues or () if q not in known]
        if unused and known:
            log.warning(
                "a worker claims from queue %s that no registered task uses (the tasks' "
                "queues: %s); only jobs enqueued with options(queue=...) reach it",
                ", ".join(unused),
                ", ".join(sorted(known)),
            )

    def start(
        self,
        store: Backend,
        settings: WorkerSettings,
        clock: Callable[[], float],
        on_event: EventHook,
        job_context: JobContext | None,
    ) -> Worker:
        """Start a worker on ``store``; a long-running one (not ``burst``) starts the
        scheduler too when there are schedules."""
        worker = Worker(
            store,
            self._registry,
            settings,
            clock=clock,
            on_event=on_event,
            job_context=job_context,
            builder=self._builder,
        )
        self._workers.append(worker)
        worker.start()
        if not settings.burst and self._schedules:
            self._schedules.scheduler(clock).start()  # keeps the schedules while a worker runs
        return worker

    async def drain(
        self, start: Callable[[EventHook], Worker], on_event: EventHook, timeout: float | None
    ) -> Drained:
        """Run the ready jobs on a burst worker from ``start`` until none is ready and none
        runs (:func:`~quart_jobs.testing.burst_drain`); stopped at once after ``timeout``."""
        return await burst_drain(start, lambda worker: self.stop(worker, 0), on_event, timeout)

    def start_retention(
        self, seconds: float | None, purge: Purge, clock: Callable[[], float]
    ) -> None:
        """Start deleting the finished jobs older than ``seconds``, unless retention is off
        (``None``) or already running."""
        if seconds is None or (self._retention is not None and self._retention.running):
            return
        self._retention = Retention(purge, seconds, clock)
        self._retention.start()

    async def stop(self, worker: Worker, timeout: float | None = None) -> None:
        """Stop ``worker`` gracefully, and the scheduler with the last long-running one."""
        try:
            await worker.stop(timeout)
        finally:
            if worker in self._workers:
                self._workers.remove(worker)
            if not any(not w.settings.burst for w in self._workers):
                await self._schedules.stop()

    async def close(self) -> None:
        """Stop every worker gracefully, then retention."""
        for worker in list(self._workers):
            await self.stop(worker)
        if self._retention is not None:
            await self._retention.stop()
            self._retention = None

    def notify(self) -> None:
        """Wake every worker: jobs may be ready."""
        for worker in self._workers:
            worker.notify()

    async def cancel_running(self, job_id: int) -> None:
        """Ask the worker running ``job_id`` here, if any, to stop it."""
        for worker in self._workers:
            await worker.cancel_local(job_id)

    def __iter__(self) -> Iterator[Worker]:
        return iter(list(self._workers))
