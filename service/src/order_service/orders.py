"""Orders: business records in their own table, each written in one transaction with its job.

An order row holds what was ordered (customer, tier, items, the simulation knobs), its
idempotency key with the fingerprint of the request that used it, its status and history, and
the id of the job that processes it; the job's arguments carry the order's id (and
``instant=True`` for an order of no time: :func:`instant_kwargs`). Deleting jobs (retention,
``quart-jobs purge``) never touches an order.

Every write below is a synchronous function of a :class:`~quart_jobs.Transaction`, run by
``jobs.transaction(...)``: the order and its job change together. The SQL is written once,
with ``?`` placeholders, and given the backend's own placeholder by :func:`sql`.

How the status follows the job:

* ``queued``: written with the job, in the same transaction;
* ``processing``: the task writes it (with ``started_at`` and the attempt) when it starts an
  order that takes time or asks for failures; an instant order (:func:`instant_kwargs`) goes
  from ``queued`` to ``completed``;
* ``completed``: written with the fulfilment in the transaction that records the job's
  success (``current_job().succeed_with``): both exactly once with it;
* ``failed`` / ``cancelled`` / back to ``queued`` after a failed attempt: written when the
  worker reports the job's outcome (:func:`sync_with_job`), and, for an outcome lost in a
  crash, by :func:`sync_with_job` again when the service reconciles at start-up and every
  half minute. ``completed`` and ``cancelled`` are final.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from quart_jobs import Job, JobState, QueueLimits, RateLimit, Tier, Transaction

TASK = "orders.process"

STATUSES = ("queued", "processing", "completed", "failed", "cancelled")
FINAL = ("completed", "cancelled")
#: The statuses whose job may still change: what reconciliation looks at.
UNSETTLED = ("queued", "processing")

STATUS_OF_STATE = {
    JobState.WAITING: "queued",  # waits for other jobs: not started yet
    JobState.QUEUED: "queued",
    JobState.RUNNING: "processing",
    JobState.SUCCEEDED: "completed",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
}

COLUMNS = (
    "id, customer, tier, items, processing_seconds, fail_times, status, created_at, "
    "started_at, completed_at, attempts, error, idempotency_key, fingerprint, job_id"
)
SELECT = f"SELECT {COLUMNS} FROM orders"
LIST = f"{SELECT} WHERE customer = ? ORDER BY id DESC LIMIT ?"
LIST_BY_STATUS = f"{SELECT} WHERE customer = ? AND status = ? ORDER BY id DESC LIMIT ?"
BY_ID = f"{SELECT} WHERE id = ?"
BY_JOB = f"{SELECT} WHERE job_id = ?"
#: Unsettled orders after an id, in id order (the partial index ``orders_unsettled``).
UNSETTLED_PAGE = (
    "SELECT id, job_id FROM orders WHERE status IN ('queued', 'processing') AND id > ? "
    "ORDER BY id LIMIT ?"
)
PROCESSING = "SELECT id, job_id FROM orders WHERE status = 'processing' ORDER BY id"


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was used before, by this customer, for a different request."""


class OrderNotCancellable(Exception):
    """The order is processing or finished (its status is the message)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True, slots=True)
class NewOrder:
    customer: str
    tier: str
    items: list[dict[str, Any]]
    processing_seconds: float
    fail_times: int
    idempotency_key: str | None = None

    @property
    def fingerprint(self) -> str:
        """What makes two requests the same order (the tier is the customer's, not sent)."""
        return fingerprint(self.items, self.processing_seconds, self.fail_times)


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    customer: str
    tier: str
    items: list[dict[str, Any]]
    processing_seconds: float
    fail_times: int
    status: str
    created_at: float
    started_at: float | None
    completed_at: float | None
    attempts: int
    error: str | None
    idempotency_key: str | None
    fingerprint: str | None
    job_id: int | None

    @property
    def final(self) -> bool:
        return self.status in FINAL


def fingerprint(items: Sequence[dict[str, Any]], processing_seconds: float, fail_times: int) -> str:
    body = {
        "items": list(items),
        "processing_seconds": processing_seconds,
        "fail_times": fail_times,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def order_from_row(row: Sequence[Any]) -> Order:
    """An :class:`Order` from a row in :data:`COLUMNS` order."""
    return Order(
        id=int(row[0]),
        customer=row[1],
        tier=row[2],
        items=json.loads(row[3]),
        processing_seconds=float(row[4]),
        fail_times=int(row[5]),
        status=row[6],
        created_at=float(row[7]),
        started_at=None if row[8] is None else float(row[8]),
        completed_at=None if row[9] is None else float(row[9]),
        attempts=int(row[10]),
        error=row[11],
        idempotency_key=row[12],
        fingerprint=row[13],
        job_id=None if row[14] is None else int(row[14]),
    )


def sql(statement: str, placeholder: str) -> str:
    """``statement`` (written with ``?``, which no statement here uses otherwise) in the
    backend's placeholder style."""
    return statement if placeholder == "?" else statement.replace("?", placeholder)


def _one(tx: Transaction, statement: str, params: Sequence[Any]) -> Order | None:
    row = tx.fetchone(sql(statement, tx.placeholder), params)
    return None if row is None else order_from_row(row)


def _exec(tx: Transaction, statement: str, params: Sequence[Any]) -> int:
    return tx.execute(sql(statement, tx.placeholder), params)


# --- writes: each a function of one transaction -----------------------------------------------


def fulfilment_key(customer: str) -> str:
    """The rate key of a customer's fulfilments (``FULFILMENT_RATE_LIMIT``)."""
    return f"fulfilment:{customer}"


def instant_kwargs(new: NewOrder) -> dict[str, bool]:
    """The job's keyword arguments: ``instant=True`` for an order of no time and no simulated
    failure (its task then completes it without reading the order first)."""
    return {"instant": True} if new.processing_seconds == 0 and new.fail_times == 0 else {}


def place(
    new: NewOrder,
    now: float,
    limits: QueueLimits | None,
    fulfilment_rate: RateLimit | None = None,
) -> Callable[[Transaction], tuple[Order, bool]]:
    """The order and its job, or (same key, same request) the order placed before: ``(order,
    created)``. :class:`IdempotencyKeyReused` for the same key with another request. With
    ``fulfilment_rate``, the job counts against its customer's fulfilment rate limit."""

    # Encoded here, on the caller's thread: the function below runs on the SQLite writer, which
    # every write of the process waits for.
    fingerprint_ = new.fingerprint if new.idempotency_key is not None else None
    items_json = json.dumps(new.items, separators=(",", ":"))

    def run(tx: Transaction) -> tuple[Order, bool]:
        if new.idempotency_key is not None:
            before = _one(
                tx,
                f"{SELECT} WHERE customer = ? AND idempotency_key = ?",
                (new.customer, new.idempotency_key),
            )
            if before is not None:
                if before.fingerprint != fingerprint_:
                    raise IdempotencyKeyReused(new.idempotency_key)
                return before, False
        row = tx.fetchone(
            sql(
                "INSERT INTO orders (customer, tier, items, processing_seconds, fail_times, "
                "status, created_at, attempts, idempotency_key, fingerprint) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?, 0, ?, ?) RETURNING id",
                tx.placeholder,
            ),
            (
                new.customer,
                new.tier,
                items_json,
                new.processing_seconds,
                new.fail_times,
                now,
                new.idempotency_key,
                fingerprint_,
            ),
        )
        assert row is not None
        order_id = int(row[0])
        job = tx.options(
            priority=Tier.parse(new.tier),
            owner=new.customer,
            limits=limits,
            rate_key=None if fulfilment_rate is None else fulfilment_key(new.customer),
            rate_limit=fulfilment_rate,
        ).enqueue(TASK, order_id, **instant_kwargs(new))
        _exec(tx, "UPDATE orders SET job_id = ? WHERE id = ?", (job.id, order_id))
        # The row just written, without reading it back (W3's profile: one statement and a
        # JSON parse less per order).
        return (
            Order(
                id=order_id,
                customer=new.customer,
                tier=new.tier,
                items=new.items,
                processing_seconds=float(new.processing_seconds),
                fail_times=int(new.fail_times),
                status="queued",
                created_at=now,
                started_at=None,
                completed_at=None,
                attempts=0,
                error=None,
                idempotency_key=new.idempotency_key,
                fingerprint=fingerprint_,
                job_id=job.id,
            ),
            True,
        )

    return run


def cancel(customer: str, order_id: int, now: float) -> Callable[[Transaction], Order | None]:
    """Cancel a queued order and its job together: the order, ``None`` if the customer has no
    such order, :class:`OrderNotCancellable` once it is processing or finished."""

    def run(tx: Transaction) -> Order | None:
        order = _one(tx, f"{BY_ID} AND customer = ?", (order_id, customer))
        if order is None:
            return None
        if order.status != "queued" or order.job_id is None:
            raise OrderNotCancellable(order.status)
        job = tx.cancel_job(order.job_id)
        if job is None or job.state is not JobState.CANCELLED:  # its job started meanwhile
            raise OrderNotCancellable("failed" if job is None else STATUS_OF_STATE[job.state])
        _exec(
            tx,
            "UPDATE orders SET status = 'cancelled', completed_at = ? WHERE id = ?",
            (now, order_id),
        )
        return _one(tx, BY_ID, (order_id,))

    return run


def start(order_id: int, job: Job) -> Callable[[Transaction], Order | None]:
    """The task began an attempt: ``processing``, with its start and attempt number. The
    order as it is now (a completed or cancelled one is left alone), ``None`` if none."""

    def run(tx: Transaction) -> Order | None:
        _exec(
            tx,
            "UPDATE orders SET status = 'processing', started_at = ?, attempts = ?, error = NULL "
            "WHERE id = ? AND status NOT IN ('completed', 'cancelled')",
            (job.started_at, job.attempts, order_id),
        )
        return _one(tx, BY_ID, (order_id,))

    return run


def complete(order_id: int, job: Job, now: float) -> Callable[[Transaction], None]:
    """The fulfilment (once per order, whatever the retries) and ``completed``, together, in
    the transaction that records the job's success (``current_job().succeed_with``)."""

    def run(tx: Transaction) -> None:
        _exec(
            tx,
            "INSERT INTO orders_fulfilments (order_id, attempt, worker, fulfilled_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING",
            (order_id, job.attempts, job.worker or "", now),
        )
        _exec(
            tx,
            "UPDATE orders SET status = 'completed', completed_at = COALESCE(completed_at, ?), "
            "started_at = COALESCE(started_at, ?), attempts = ?, error = NULL "
            "WHERE id = ? AND status <> 'cancelled'",
            (now, job.started_at, job.attempts, order_id),
        )

    return run


def sync_with_job(order_ids: Sequence[int]) -> Callable[[Transaction], int]:
    """Make each unsettled order say what its job says now (read in this transaction), so an
    outcome lost in a crash is caught up; return how many orders changed. An order whose job
    is gone (purged before the order settled) is failed with that reason."""

    def run(tx: Transaction) -> int:
        changed = 0
        for order_id in order_ids:
            order = _one(tx, BY_ID, (order_id,))
            if order is None or order.status not in UNSETTLED or order.job_id is None:
                continue
            job = tx.get_job(order.job_id)
            changed += _follow(tx, order, job)
        return changed

    return run


def _follow(tx: Transaction, order: Order, job: Job | None) -> int:
    error: str | None
    if job is None:
        status, error = "failed", "its job was deleted before the order finished"
        attempts, started, completed = order.attempts, order.started_at, order.completed_at
    else:
        status, error = STATUS_OF_STATE[job.state], job.error
        attempts, started = job.attempts, job.started_at
        completed = job.finished_at if job.state.finished else None
    if (status, attempts, error) == (order.status, order.attempts, order.error):
        return 0
    # ``attempts <= ?``: an attempt that started after the job was read wins.
    return _exec(
        tx,
        "UPDATE orders SET status = ?, attempts = ?, started_at = ?, completed_at = ?, "
        "error = ? WHERE id = ? AND status IN ('queued', 'processing') AND attempts <= ?",
        (status, attempts, started, completed, error, order.id, attempts),
    )


# --- upgrade from the release where an order was its job --------------------------------------


def order_from_old_job(row: Sequence[Any]) -> tuple[Any, ...] | None:
    """The ``orders`` row (in :data:`COLUMNS` order) of a job of the release where the job's
    arguments carried the order: ``(id, args, state, attempts, enqueued_at, started_at,
    finished_at, error, key)``; ``None`` when its arguments are not such an order."""
    job_id, args_json, state, attempts, enqueued_at, started_at, finished_at, error, key = row
    args = json.loads(args_json)
    if not args or not isinstance(args[0], dict) or "items" not in args[0]:
        return None
    old = args[0]
    items = old["items"]
    seconds = float(old.get("processing_seconds", 0))
    fail_times = int(old.get("fail_times", 0))
    # Old keys read "order:<customer id>:<Idempotency-Key>".
    idem = key.split(":", 2)[2] if isinstance(key, str) and key.count(":") >= 2 else None
    status = STATUS_OF_STATE[JobState(state)]
    return (
        job_id,
        old["customer"],
        old["tier"],
        json.dumps(items, separators=(",", ":")),
        seconds,
        fail_times,
        status,
        enqueued_at,
        started_at,
        finished_at if JobState(state).finished else None,
        attempts,
        error,
        idem,
        None if idem is None else fingerprint(items, seconds, fail_times),
        job_id,
    )


#: The old jobs to copy, in :func:`order_from_old_job`'s column order.
OLD_ORDER_JOBS = (
    "SELECT id, args, state, attempts, enqueued_at, started_at, finished_at, error, key "
    f"FROM qj_jobs WHERE task = '{TASK}' ORDER BY id"
)
INSERT_MIGRATED = (
    f"INSERT INTO orders ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: The copied jobs' arguments become the order's id (the order keeps the job's id).
REWRITE_OLD_ARGS = "UPDATE qj_jobs SET args = ? WHERE id = ?"
