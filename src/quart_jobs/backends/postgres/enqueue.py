"""How the PostgreSQL backend writes enqueues: several callers' jobs in one statement (group
commit), each caller's :class:`~quart_jobs.backends.base.QueueLimits` checked in its
transaction. The statement tags the jobs, updates the fair book and NOTIFYs the workers.

Limits are exact among enqueues that have limits: they take an advisory lock (per schema)
before counting, so two processes cannot both see room for the last job. The counts are
``COUNT(*)`` over the partial indexes of queued jobs, paid once per batch, not per job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from ...errors import BackendUnavailable, QueueFull
from ...models import EnqueueResult, Job
from ..base import QueueLimits
from ..rows import job_from_row
from ..shared_sql.jobs import KEY, OWNER, TASK
from . import statements as q
from .connections import RETRYABLE, Connections, SyncConnection, unavailable
from .wakeup import CHANNEL

Connection = psycopg.AsyncConnection[TupleRow]


@dataclass(frozen=True, slots=True)
class EnqueueCall:
    """One ``enqueue`` call: its rows (:func:`~..shared_sql.jobs.insert_params`) and limits."""

    rows: list[tuple[Any, ...]]
    limits: QueueLimits | None = None


class KeyVanished(Exception):
    """The job holding a key was deleted (purged) between our INSERT and our SELECT."""


async def flush(
    db: Connections, calls: list[EnqueueCall]
) -> list[list[EnqueueResult] | BaseException]:
    """One transaction for every waiting enqueue call (the group commit's flush); if the
    database rejects the batch (not a connection failure), each call is written alone so only
    the bad one fails."""
    try:
        return list(await write(db, calls, translate=len(calls) == 1))
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise unavailable(db.url, exc) from exc
    except psycopg.Error:
        alone: list[list[EnqueueResult] | BaseException] = []
        for call in calls:
            try:
                alone.extend(await write(db, [call]))
            except BackendUnavailable as error:
                alone.append(error)
        return alone


async def write(
    db: Connections, calls: list[EnqueueCall], *, translate: bool = True
) -> list[list[EnqueueResult] | QueueFull]:
    """Write ``calls`` in one transaction, retrying a deadlock between same-key batches."""
    pool = db.pool_or_fail()
    attempt = 0
    while True:
        attempt += 1
        try:
            async with pool.connection() as conn:
                results = await write_calls(conn, calls, db.schema)
            if any(isinstance(r, list) and any(e.created for e in r) for r in results):
                db.waker.send([(CHANNEL, db.schema)])
            return results
        except KeyVanished:
            continue  # the job holding a key was purged meanwhile: insert it anew
        except psycopg.Error as exc:
            if isinstance(exc, RETRYABLE) and attempt < 4:
                await asyncio.sleep(0.01 * attempt)
                continue
            if translate:
                raise unavailable(db.url, exc) from exc
            raise


async def write_calls(
    conn: Connection, calls: Sequence[EnqueueCall], schema: str
) -> list[list[EnqueueResult] | QueueFull]:
    """Write ``calls`` in one transaction: each gets its results, or the :class:`QueueFull`
    that refused it (then none of its jobs is stored). The caller wakes the workers once it
    returned (:class:`~.connections.Waker`): a NOTIFY in the transaction would hold
    PostgreSQL's notify lock, one for the whole cluster, through the commit's WAL flush.

    Without limits that transaction is one statement on the autocommit connection: one round
    trip, which returns once the server committed (:data:`~.statements.INSERT_QUIET`). Limits
    take a lock before their counts, so their calls add BEGIN, the lock and counts, and
    COMMIT."""
    refused: dict[int, QueueFull] = {}
    if any(call.limits is not None for call in calls):
        async with conn.transaction():
            refused = await _check_limits(conn, calls, schema)
            rows = [row for i, call in enumerate(calls) if i not in refused for row in call.rows]
            flat = await _insert_rows(conn, rows) if rows else []
    else:
        rows = [row for call in calls for row in call.rows]
        flat = await _insert_rows(conn, rows)
    results: list[list[EnqueueResult] | QueueFull] = []
    start = 0
    for i, call in enumerate(calls):
        if i in refused:
            results.append(refused[i])
        else:
            results.append(flat[start : start + len(call.rows)])
            start += len(call.rows)
    return results


def enqueue_in(
    conn: SyncConnection, call: EnqueueCall, channel: str, schema: str
) -> list[EnqueueResult]:
    """``call``'s jobs inserted in the transaction open on ``conn`` (the application's own, on
    a connection of its thread: see :mod:`.transaction`), its limits checked there; NOTIFY
    ``channel`` when that transaction commits."""
    if call.limits is not None:
        with conn.pipeline():
            cursors = [conn.execute(sql, params) for sql, params in _limit_queries([call], schema)]
        refused = _refusals([call], *_counts([c.fetchall() for c in cursors[1:]]))
        if refused:
            raise refused[0]
    if not call.rows:
        return []
    created = conn.execute(*_insert_statement(call.rows, (channel, schema))).fetchall()
    results, missing = _placed(call.rows, created)
    if missing:
        existing = conn.execute(f"{q.SELECT} WHERE key = ANY(%s)", (missing,)).fetchall()
        _fill(call.rows, results, existing)
    return [r for r in results if r is not None]


async def _check_limits(
    conn: Connection, calls: Sequence[EnqueueCall], schema: str
) -> dict[int, QueueFull]:
    """The calls that would pass a cap (:func:`_refusals`), counted under the limits lock."""
    # One round trip: the server counts once it holds the lock (each statement of a READ
    # COMMITTED transaction sees what committed before it began), and a transaction that holds
    # the lock does not wait for this client between the lock and its counts.
    async with conn.pipeline():
        cursors = [await conn.execute(sql, params) for sql, params in _limit_queries(calls, schema)]
        counted = [await cur.fetchall() for cur in cursors[1:]]
    return _refusals(calls, *_counts(counted))


def _limit_queries(calls: Sequence[EnqueueCall], schema: str) -> list[tuple[str, Any]]:
    """The limits lock, then the counts the calls' caps need: queued jobs, queued jobs of the
    calls' owners, the calls' keys that exist."""
    rows = [row for call in calls for row in call.rows]
    owners = sorted({row[OWNER] for row in rows if row[OWNER] is not None})
    keys = sorted({row[KEY] for row in rows if row[KEY] is not None})
    return [
        (q.LOCK_LIMITS, (q.LIMITS_LOCK, schema)),
        (q.QUEUED_TOTAL, ()),
        (q.QUEUED_BY_OWNER, (owners,)),
        (q.KEYS_KNOWN, (keys,)),
    ]


def _counts(counted: list[list[Any]]) -> tuple[int, dict[str, int], set[str]]:
    total_rows, owned_rows, key_rows = counted
    total = int(total_rows[0][0]) if total_rows else 0
    return total, {owner: int(n) for owner, n in owned_rows}, {key for (key,) in key_rows}


def _refusals(
    calls: Sequence[EnqueueCall], total: int, owned: dict[str, int], known: set[str]
) -> dict[int, QueueFull]:
    """The calls that would pass a cap, taken in order, each counting the jobs of the calls
    accepted before it. A job whose key exists is a replay and counts nothing."""
    refused: dict[int, QueueFull] = {}
    for i, call in enumerate(calls):
        call_total, call_owned, call_keys = total, dict(owned), set(known)
        try:
            for row in call.rows:
                key, owner = row[KEY], row[OWNER]
                if key is not None and key in call_keys:
                    continue
                if call.limits is not None:
                    call.limits.check(call_total, 0 if owner is None else call_owned.get(owner, 0))
                call_total += 1
                if owner is not None:
                    call_owned[owner] = call_owned.get(owner, 0) + 1
                if key is not None:
                    call_keys.add(key)
        except QueueFull as exc:
            refused[i] = exc
            continue
        total, owned, known = call_total, call_owned, call_keys
    return refused


async def _insert_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> list[EnqueueResult]:
    """Insert ``rows`` with one statement (tags and fair book in it); a key that exists
    returns the existing job."""
    cur = await conn.execute(*_insert_statement(rows, None))
    results, missing = _placed(rows, await cur.fetchall())
    if missing:
        # A concurrent transaction inserting the same key made ours wait for its COMMIT; this
        # statement's snapshot sees its row (READ COMMITTED).
        cur = await conn.execute(f"{q.SELECT} WHERE key = ANY(%s)", (missing,))
        _fill(rows, results, await cur.fetchall())
    return [r for r in results if r is not None]


def _insert_statement(rows: list[tuple[Any, ...]], wake: tuple[str, str] | None) -> tuple[str, Any]:
    """The statement inserting ``rows``, with a NOTIFY on ``wake``'s channel and payload
    (delivered when the transaction commits) if given."""
    if len(rows) == 1:
        if wake is None:
            return q.INSERT_ONE_QUIET, q.insert_one(rows[0])
        return q.INSERT_ONE, q.insert_one(rows[0], *wake)
    if wake is None:
        return q.INSERT_QUIET, q.insert_arrays(rows)
    return q.INSERT, q.insert_arrays(rows, *wake)


def _placed(
    rows: list[tuple[Any, ...]], returned: list[Any]
) -> tuple[list[EnqueueResult | None], list[Any]]:
    """Each row's result from the rows the insert returned (``None`` where a key existed),
    and those keys."""
    created = sorted(map(job_from_row, returned), key=lambda job: job.id)
    # The rows inserted are those without a key and the first of each key returned, in the
    # order given (their ids ascend in that order).
    keys = {job.key for job in created if job.key is not None}
    positions = []
    for i, params in enumerate(rows):
        if params[KEY] is None or params[KEY] in keys:
            positions.append(i)
            keys.discard(params[KEY])
    if len(positions) != len(created) or any(
        (job.task, job.key) != (rows[i][TASK], rows[i][KEY])
        for i, job in zip(positions, created, strict=False)
    ):
        raise BackendUnavailable("PostgreSQL returned the enqueued rows in an unexpected order")
    results: list[EnqueueResult | None] = [None] * len(rows)
    for i, job in zip(positions, created, strict=True):
        results[i] = EnqueueResult(job, created=True)
    missing = [params[KEY] for params, r in zip(rows, results, strict=True) if r is None]
    return results, missing


def _fill(
    rows: list[tuple[Any, ...]], results: list[EnqueueResult | None], existing_rows: list[Any]
) -> None:
    """The results of rows whose key existed: the jobs holding those keys."""
    existing: dict[str | None, Job] = {job.key: job for job in map(job_from_row, existing_rows)}
    for i, params in enumerate(rows):
        if results[i] is None:
            if params[KEY] not in existing:
                raise KeyVanished(params[KEY])
            results[i] = EnqueueResult(existing[params[KEY]], created=False)
