"""Where a worker's shutdown drains: the graceful stop.

1. The worker stops claiming (:meth:`ClaimLoop.stop_claiming`); the claim loop goes on
   recording the outcomes of the jobs that end.
2. Every running job, and any that a round still in flight at the stop launches, gets
   ``timeout`` seconds (``shutdown_timeout`` by default) to end.
3. At that deadline the jobs still running are cancelled and put back in the queue, their
   attempt refunded (:class:`~quart_jobs.execution.StopReason` ``SHUTDOWN``).
4. Once no job runs and every outcome is recorded, the claim loop ends; then the worker leaves
   the live-workers registry and closes its sync task threads (those still running code the
   worker gave up on are abandoned, and logged).

The worker's own loops are supervised (:class:`~quart_jobs.worker.Worker`): one that fails is
logged with its traceback, and the worker drains this same way.
"""

from __future__ import annotations

import asyncio
import logging

from .claim_loop import ClaimLoop
from .execution import Execution, StopReason
from .maintenance.worker_registry import WorkerRegistration

log = logging.getLogger("quart_jobs.worker")


class Shutdown:
    """The graceful stop of one worker (see the module)."""

    def __init__(
        self,
        worker: str,
        *,
        claims: ClaimLoop,
        execution: Execution,
        registration: WorkerRegistration,
    ) -> None:
        self._worker = worker
        self._claims = claims
        self._execution = execution
        self._registration = registration
        self._deadline: float | None = None  # loop time at which running jobs are put back
        self._put_back = 0

    def arm_late(self, job_id: int, task: asyncio.Task[object]) -> None:
        """A job launched by a claim round that was in flight at the stop: it gets the same
        deadline as those running then (nothing while the worker runs)."""
        if self._deadline is not None:
            self._arm(job_id, task)

    async def drain(self, timeout: float, claim_loop: asyncio.Task[object] | None) -> None:
        """Steps 2 and 3 (the worker stopped claiming): wait until ``claim_loop`` ended, having
        recorded every outcome, cancelling at the deadline the jobs still running."""
        execution = self._execution
        # Every running job, and any a round still in flight launches after this point, is
        # cancelled at the deadline (put back, attempt refunded) if it has not ended by then.
        self._deadline = asyncio.get_running_loop().time() + timeout
        for job_id, (task, _) in list(execution.running.items()):
            self._arm(job_id, task)
        if execution.running:
            log.info(
                "worker %s waiting up to %.1fs for %d jobs",
                self._worker,
                timeout,
                len(execution.running),
            )
        if claim_loop is not None:
            self._claims.wake()
            # The claim loop ends once no job runs and records every outcome; a failure is logged.
            await asyncio.wait([claim_loop])
        if execution.running:  # the loop gave up (store down) or failed: the jobs still end in time
            await asyncio.wait(execution.tasks())
        if self._put_back:
            log.warning("worker %s putting %d unfinished jobs back", self._worker, self._put_back)
        if execution.outcomes:
            log.error(
                "worker %s: %d outcomes not recorded; their leases expire and the jobs run again",
                self._worker,
                len(execution.outcomes),
            )

    async def release(self) -> None:
        """Step 4: leave the live-workers registry, close the sync task threads."""
        await self._registration.leave()
        threads = self._execution.threads
        threads.close()
        if threads.abandoned:
            log.warning(
                "worker %s: %d sync task threads still run code the worker gave up on",
                self._worker,
                threads.abandoned,
            )

    def _arm(self, job_id: int, task: asyncio.Task[object]) -> None:
        """Cancel job ``job_id``'s ``task`` at the deadline if it still runs then (it is put
        back, its attempt refunded)."""
        assert self._deadline is not None

        def expire() -> None:
            if not task.done() and self._execution.stop(job_id, StopReason.SHUTDOWN):
                self._put_back += 1

        handle = asyncio.get_running_loop().call_at(self._deadline, expire)
        task.add_done_callback(lambda _: handle.cancel())
