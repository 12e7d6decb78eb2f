"""Lease recovery: jobs whose lease expired go back to the queue.

A worker that dies (or hangs) stops renewing the leases of the jobs it holds; once a lease has
expired, any worker puts the job back in the queue (:meth:`Backend.recover_expired`). Every
worker does it at its heartbeat once half a lease has passed since its last recovery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..backends.base import Backend

log = logging.getLogger("quart_jobs.worker")


class LeaseRecovery:
    """Recovers expired leases when due; ``on_recovered`` wakes the claim loop to take the
    jobs put back."""

    def __init__(
        self, backend: Backend, lease_seconds: float, on_recovered: Callable[[], None]
    ) -> None:
        self._backend = backend
        self._every = lease_seconds / 2
        self._on_recovered = on_recovered
        self._last = 0.0

    async def run_if_due(self, now: float) -> int:
        """Recover the leases expired at ``now`` if half a lease passed since the last time;
        return how many jobs went back to the queue."""
        # a clock stepped back (now < the last time) must not pause recovery
        if 0 <= now - self._last < self._every:
            return 0
        self._last = now
        recovered = await self._backend.recover_expired(now)
        if recovered:
            log.warning("recovered %d jobs whose lease expired", recovered)
            self._on_recovered()
        return recovered
