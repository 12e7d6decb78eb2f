"""Keeping each order's status with its job's, whatever crashes in between.

The task writes ``processing`` and ``completed`` itself, in transactions with the order. The
other outcomes (a failed attempt that will be retried, failed for good, cancelled by an
admin, a lease that expired) are recorded by the worker in the jobs table; the service then
brings the order along:

* at once, from the job's event in the process that recorded it (:func:`on_job_event`);
* at start-up, every unsettled order (queued or processing) is compared with its job, and
  every :data:`RECONCILE_SECONDS` the processing ones: an event lost in a crash, or an outcome
  recorded without one (a lease that expired in another process), is caught up there.

Each catch-up reads the job inside the transaction that updates the order
(:func:`order_service.orders.sync_with_job`), so it can only make the order agree with its job.
"""

from __future__ import annotations

import asyncio
import logging

from quart_jobs import Job, Jobs

from . import orders
from .store import OrdersStore

log = logging.getLogger("orders")

RECONCILE_SECONDS = 30.0
PAGE = 500
#: Job events after which the order may have to change.
EVENTS = frozenset({"retried", "failed", "cancelled", "requeued"})


class Reconciler:
    """Catches orders up with their jobs (see the module)."""

    def __init__(self, jobs: Jobs, store: OrdersStore) -> None:
        self.jobs = jobs
        self.store = store
        self._pending: set[asyncio.Task[int]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._stopped = False

    def on_job_event(self, event: str, job: Job, elapsed: float | None) -> None:
        """A job hook: after an outcome of an order's job, update its order."""
        if event in EVENTS and job.task == orders.TASK and not self._stopped:
            task = asyncio.get_running_loop().create_task(self._sync_job(job.id))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _sync_job(self, job_id: int) -> int:
        try:
            order = await self.store.order_of_job(job_id)
            if order is None:
                return 0
            return await self.jobs.transaction(orders.sync_with_job([order.id]))
        except Exception as exc:  # the next reconciliation catches it up
            log.warning("order of job %d not updated yet: %s", job_id, exc)
            return 0

    async def all_unsettled(self) -> int:
        """Compare every queued or processing order with its job; return how many changed."""
        changed, after = 0, 0
        while page := await self.store.unsettled_orders(after, PAGE):
            changed += await self.jobs.transaction(orders.sync_with_job(page))
            after = page[-1]
        return changed

    async def processing(self) -> int:
        ids = await self.store.processing_orders()
        changed = 0
        for start in range(0, len(ids), PAGE):
            changed += await self.jobs.transaction(orders.sync_with_job(ids[start : start + PAGE]))
        return changed

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="orders-reconcile")

    async def stop(self) -> None:
        """Stop; outcomes recorded from now on (the shutdown's requeues) are caught up by the
        next start's reconciliation."""
        self._stopped = True
        tasks = [t for t in (self._loop, *self._pending) if t is not None]
        self._loop = None
        if self._pending:
            await asyncio.wait(self._pending, timeout=5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        check = self.all_unsettled
        while True:
            try:
                changed = await check()
                if changed:
                    log.info("reconciled %d orders with their jobs", changed)
                check = self.processing
            except Exception as exc:
                log.warning("reconciling orders with their jobs failed: %s", exc)
            await asyncio.sleep(RECONCILE_SECONDS)


async def refuse_cancelled_order(store: OrdersStore, job: Job) -> str | None:
    """The retry guard: an order's cancellation is final, so its job is not run again."""
    if job.task != orders.TASK:
        return None
    order = await store.order_of_job(job.id)
    if order is not None and order.status == "cancelled":
        return f"order {order.id} was cancelled, and an order's cancellation is final"
    return None
