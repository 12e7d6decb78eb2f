"""Orders are jobs: an order is the job that processes it, so the order and its job are one
row, committed together by construction (nothing to reconcile after a crash).

The job's arguments carry the order (customer, tier, items, simulation knobs); its owner is
the customer; its state is the order's status. Fulfilment is written to its own table, once
per order whatever the retries (effectively once).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from quart import current_app

from quart_jobs import Job, JobState, QuartJobs, current_job

from .config import Settings
from .store import Customer, OrdersStore

TASK = "orders.process"
EXTENSION_KEY = "orders"

STATUS_OF_STATE = {
    JobState.QUEUED: "queued",
    JobState.RUNNING: "processing",
    JobState.SUCCEEDED: "completed",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
}
STATE_OF_STATUS = {status: state for state, status in STATUS_OF_STATE.items()}

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


def key_matches(customer: Customer, api_key: str) -> bool:
    return hmac.compare_digest(customer.key_hash, hash_key(api_key))


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def order_json(job: Job) -> dict[str, Any]:
    order = job.args[0]
    finished = job.state.finished
    return {
        "id": job.id,
        "customer": order["customer"],
        "tier": order["tier"],
        "status": STATUS_OF_STATE[job.state],
        "items": order["items"],
        "processing_seconds": order["processing_seconds"],
        "attempts": job.attempts,
        "created_at": iso(job.enqueued_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.finished_at) if finished else None,
        "error": job.error,
    }


def is_order_of(job: Job | None, customer: Customer) -> bool:
    return job is not None and job.task == TASK and job.owner == customer.name


async def process_order(order: dict[str, Any]) -> dict[str, Any]:
    """The order's job: take ``processing_seconds``, fail the first ``fail_times`` attempts,
    then write the fulfilment (once per order)."""
    job = current_job()
    seconds = float(order.get("processing_seconds", 0))
    if seconds > 0:
        await asyncio.sleep(seconds)
    fail_times = int(order.get("fail_times", 0))
    if job.attempts <= fail_times:
        raise SimulatedFailure(f"simulated failure (attempt {job.attempts} of {fail_times} set)")
    state: OrdersState = current_app.extensions[EXTENSION_KEY]
    first = await state.require_store().record_fulfilment(job.id, job.attempts, job.worker or "")
    return {"fulfilled": True, "first_write": first}
