"""The live-workers registry: each worker's row in the store (its tasks and queues).

A worker writes its row before its first claim, refreshes it every half lease with its
heartbeats (one upsert per interval, whatever the number of jobs) and deletes it when it stops;
a row not refreshed for :data:`EXPIRY_LEASES` leases expires by itself (its worker died). So
``stats`` can tell which ready jobs no running worker serves (:mod:`quart_jobs.unserved`).
"""

from __future__ import annotations

import logging
import os
import socket

from ..backends.base import Backend
from ..errors import STORE_DOWN
from ..models import WorkerRecord
from ..registry import Registry
from ..worker_settings import WorkerSettings

log = logging.getLogger("quart_jobs.worker")

#: A worker's registry row expires after this many lease intervals without a heartbeat.
EXPIRY_LEASES = 3.0


class WorkerRegistration:
    """One worker's row in the registry (see the module)."""

    def __init__(
        self, backend: Backend, worker: str, registry: Registry, settings: WorkerSettings
    ) -> None:
        self._backend = backend
        self._worker = worker
        self._registry = registry
        self._settings = settings
        #: When the row was first written; from then on, a stop removes it.
        self.started_at: float | None = None
        self._registered_at = float("-inf")

    def record(self, now: float) -> WorkerRecord:
        """The worker as the live-workers registry holds it, refreshed at ``now``."""
        started = now if self.started_at is None else self.started_at
        return WorkerRecord(
            name=self._worker,
            host=socket.gethostname(),
            pid=os.getpid(),
            tasks=tuple(sorted(self._registry.names())),
            queues=self._settings.queues,
            concurrency=self._settings.concurrency,
            started_at=started,
            seen_at=now,
            expires_at=now + EXPIRY_LEASES * self._settings.lease_seconds,
        )

    async def refresh(self, now: float) -> None:
        """Write the row at start, then every half lease (a clock stepped back writes at
        once): one upsert per interval, whatever the number of jobs."""
        if 0 <= now - self._registered_at < self._settings.lease_seconds / 2:
            return
        if self.started_at is None:
            self.started_at = now  # from here on, a stop removes the row
        self._registered_at = now  # the claim loop and the heartbeat loop: one write
        try:
            await self._backend.register_worker(self.record(now), now)
        except BaseException:
            self._registered_at = float("-inf")
            raise

    async def join(self, now: float) -> None:
        """The first write, before the first claim; a store that is down only delays it to a
        later heartbeat."""
        try:
            await self.refresh(now)
        except STORE_DOWN as exc:
            log.warning("worker %s: cannot join the workers registry yet: %s", self._worker, exc)

    async def leave(self) -> None:
        """Delete the row (if it was written); a store that is down lets it expire by itself."""
        if self.started_at is None:
            return
        try:
            await self._backend.remove_worker(self._worker)
        except STORE_DOWN as exc:  # its row expires by itself
            log.warning("worker %s: cannot leave the workers registry: %s", self._worker, exc)
