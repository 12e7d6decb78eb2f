"""The service's state on the app, API keys, the order's JSON, and the order's task.

Orders are records in their own table (:mod:`order_service.orders`), each written in one
transaction with the job that processes it; the job's arguments carry the order's id only.
Fulfilment is written to its own table, once per order whatever the retries (effectively once),
in the transaction that marks the order completed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from quart import current_app

from quart_jobs import Jobs, QuartJobs, current_job

from . import orders
from .config import Settings
from .orders import Order
from .reconcile import Reconciler
from .store import Customer, OrdersStore

EXTENSION_KEY = "orders"

#: ``app.extensions`` key of the event the server sets when it begins to stop.
STOPPING_KEY = "order_service.stopping"

KEY_CACHE_SECONDS = 5.0
KEY_CACHE_MAX = 10_000

DEMO_CUSTOMERS = (
    ("alice", "vip", "demo-vip-key"),
    ("bob", "regular", "demo-regular-key"),
    ("carol", "regular", "demo-regular-key-2"),
)


class SimulatedFailure(RuntimeError):
    """Raised by the first ``fail_times`` attempts of an order (the simulation knob)."""


@dataclass
class OrdersState:
    """What the service keeps on ``app.extensions["orders"]``."""

    settings: Settings
    jobs: QuartJobs
    store: OrdersStore | None = None
    reconciler: Reconciler | None = None
    #: Valid API keys seen lately (key hash -> (expiry, customer)): a request then needs no
    #: database read to authenticate. A rotated or revoked key stops working within
    #: ``KEY_CACHE_SECONDS``. Bounded: cleared when full.
    key_cache: dict[str, tuple[float, Customer]] = field(default_factory=dict)

    def require_store(self) -> OrdersStore:
        if self.store is None:
            raise RuntimeError("the orders store is not open (the app is not serving)")
        return self.store


def hash_key(api_key: str) -> str:
    """API keys are random tokens: a SHA-256 digest is a safe, fast way to store them."""
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def new_api_key() -> str:
    return "ok_" + secrets.token_urlsafe(24)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def order_json(order: Order, progress: float | None = None) -> dict[str, Any]:
    """The order as the API shows it; ``progress`` (0 to 1) is shown while it is processing."""
    return {
        "id": order.id,
        "customer": order.customer,
        "tier": order.tier,
        "status": order.status,
        "items": order.items,
        "processing_seconds": order.processing_seconds,
        "attempts": order.attempts,
        "created_at": iso(order.created_at),
        "started_at": iso(order.started_at),
        "completed_at": iso(order.completed_at),
        "error": order.error,
        "progress": progress if order.status == "processing" else None,
    }


def orders_of_app() -> OrdersState:
    state: OrdersState = current_app.extensions[EXTENSION_KEY]
    return state


async def process_order(order_id: int, instant: bool = False) -> dict[str, Any]:
    """The order's job: mark it processing, take ``processing_seconds``, fail the first
    ``fail_times`` attempts, then write the fulfilment (once per order) and ``completed``.

    The fulfilment and ``completed`` commit in the transaction that records the job's success
    (``succeed_with``): exactly once, and never for an attempt whose lease was lost. An
    ``instant`` order (no time, no failure asked: said by its job's arguments) costs the worker
    nothing more than its claim: no read, no transaction of its own, no ``await``; the order
    goes from ``queued`` to ``completed``, and cannot be final meanwhile (a cancel changes
    queued orders only, with their job)."""
    job = current_job()
    jobs = orders_of_app().jobs
    if instant:
        job.succeed_with(orders.complete(order_id, job, jobs.clock()))
        return {"fulfilled": True}
    order = await jobs.transaction(orders.start(order_id, job))
    if order is None:
        raise LookupError(f"order {order_id} does not exist")
    if order.final:  # completed by an earlier attempt, or cancelled: nothing left to do
        return {"fulfilled": order.status == "completed"}
    if order.processing_seconds > 0:
        # One item after another, each its share of the time, reporting how far it got.
        count = max(1, len(order.items))
        for done in range(1, count + 1):
            await asyncio.sleep(order.processing_seconds / count)
            job.progress(done / count, f"{done} of {count} items")
    if job.attempts <= order.fail_times:
        raise SimulatedFailure(
            f"simulated failure (attempt {job.attempts} of {order.fail_times} set)"
        )
    job.succeed_with(orders.complete(order_id, job, jobs.clock()))
    return {"fulfilled": True}


async def wait_for_end(
    jobs: Jobs, job_id: int, seconds: float, stopping: asyncio.Event | None
) -> bool:
    """Wait until job ``job_id`` has ended (``True``), ``seconds`` have passed or the server
    begins to stop (``False``): a long poll must not hold up a graceful shutdown."""
    waiting = asyncio.ensure_future(jobs.wait(job_id, timeout=seconds))
    watchers: set[asyncio.Future[Any]] = {waiting}
    if stopping is not None:
        watchers.add(asyncio.ensure_future(stopping.wait()))
    try:
        await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    return waiting.done() and not waiting.cancelled() and waiting.exception() is None
