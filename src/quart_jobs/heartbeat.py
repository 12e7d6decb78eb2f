"""The heartbeat loop: a worker's second loop, beside the claim loop.

Every ``heartbeat_interval`` seconds (a third of the lease by default) it renews the leases of
the jobs the worker runs, and stops those whose lease was lost (another worker owns the job
now) or whose cancel was requested, and writes the progress the tasks reported (between
beats too, at most once a second, when some changed: :mod:`.progress`). Then it runs the
maintenance tasks that are due (:mod:`quart_jobs.maintenance`): lease recovery, the worker's
row in the live-workers registry and the unserved check. A store out of reach is logged and
tried again at the next beat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .backends.base import Backend
from .errors import STORE_DOWN
from .execution import Execution, StopReason
from .maintenance.lease_recovery import LeaseRecovery
from .maintenance.unserved_check import UnservedWatch
from .maintenance.worker_registry import WorkerRegistration
from .progress import PROGRESS_EVERY
from .worker_settings import WorkerSettings

log = logging.getLogger("quart_jobs.worker")


class Heartbeat:
    """Renews one worker's leases and runs its maintenance (see the module)."""

    def __init__(
        self,
        backend: Backend,
        settings: WorkerSettings,
        worker: str,
        *,
        clock: Callable[[], float],
        execution: Execution,
        recovery: LeaseRecovery,
        registration: WorkerRegistration,
        unserved: UnservedWatch,
    ) -> None:
        self._backend = backend
        self._settings = settings
        self._worker = worker
        self._clock = clock
        self._execution = execution
        self._recovery = recovery
        self._registration = registration
        self._unserved = unserved

    async def run(self) -> None:
        settings = self._settings
        while True:
            now = self._clock()
            try:
                await self._recovery.run_if_due(now)
                await self.renew(now)
                if not settings.burst:
                    await self._registration.refresh(now)
                if self._unserved.due(now):
                    me = None if settings.burst else self._registration.record(now)
                    await self._unserved.check(self._backend, now, self._worker, me)
            except STORE_DOWN as exc:
                log.warning(
                    "worker %s: heartbeat failed (store unavailable): %s", self._worker, exc
                )
            await self._until_next_beat(settings.beat_every)

    async def _until_next_beat(self, seconds: float) -> None:
        """Sleep until the next beat; meanwhile, write reported progress that changed, at most
        every :data:`~quart_jobs.progress.PROGRESS_EVERY` seconds (a person watching sees
        it move), renewing those jobs' leases with it."""
        loop = asyncio.get_running_loop()
        beat_at = loop.time() + seconds
        while (left := beat_at - loop.time()) > 0:
            await asyncio.sleep(min(left, PROGRESS_EVERY))
            if self._execution.progress.pending() and beat_at - loop.time() > 0:
                try:
                    await self.renew(self._clock(), only_progress=True)
                except STORE_DOWN as exc:
                    log.warning(
                        "worker %s: progress not written (store unavailable): %s",
                        self._worker,
                        exc,
                    )

    async def renew(self, now: float, *, only_progress: bool = False) -> None:
        """Renew the leases of the running jobs (``only_progress``: of those with progress to
        write), writing their reported progress; stop those lost or asked to cancel."""
        execution = self._execution
        leases = execution.leases()
        if not leases:
            return
        progress = execution.progress.take_all(leases)
        if only_progress:
            leases = [lease for lease, _ in progress]
            if not leases:
                return
        try:
            beats = await self._backend.heartbeat(
                leases, now, self._settings.lease_seconds, progress
            )
        except BaseException:
            execution.progress.put_back(progress)
            raise
        for beat in beats:
            if beat.job_id not in execution.running or execution.stopping(beat.job_id):
                continue
            if not beat.held:
                execution.stop(beat.job_id, StopReason.LOST)
            elif beat.cancel_requested:
                execution.stop(beat.job_id, StopReason.CANCEL)
