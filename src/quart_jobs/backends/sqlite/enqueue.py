"""How jobs are inserted on SQLite, in the writer's transaction: ready jobs tagged through the
fair book, keys deduplicated, :class:`~quart_jobs.backends.base.QueueLimits` checked against
the trigger-kept counters. Jobs with no key and no limits from callers enqueueing at once go
in with one multi-row INSERT (:func:`enqueue_plain_calls`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ...models import EnqueueResult, Job, NewJob
from ..base import QueueLimits
from ..rows import job_from_row, new_job_record
from ..shared_sql import fair
from ..shared_sql.jobs import ENQUEUED_AT, KEY, OWNER, PRIORITY, QUEUE, RUN_AT
from . import statements as s
from .book import load_book, save_book

#: One ``enqueue`` call of plain jobs: the jobs and their insert rows.
Call = tuple[Sequence[NewJob], Sequence[tuple[Any, ...]]]


def enqueue(
    conn: sqlite3.Connection,
    jobs: Sequence[NewJob],
    rows: Sequence[tuple[Any, ...]],
    limits: QueueLimits | None,
) -> list[EnqueueResult]:
    """Insert ``jobs`` (those ready now tagged) in the caller's transaction (savepoint),
    checking ``limits``: raising QueueFull here rolls the savepoint back, so nothing is
    half-written."""
    if limits is None and all(job.key is None for job in jobs):
        return enqueue_plain(conn, jobs, rows)
    ready = [row[RUN_AT] <= row[ENQUEUED_AT] for row in rows]
    book = load_book(conn, [fair.tag_key(row) for row, ok in zip(rows, ready, strict=True) if ok])
    results = []
    for job, row, ok in zip(jobs, rows, ready, strict=True):
        if limits is not None:
            existing = None if job.key is None else get_by_key(conn, job.key)
            if existing is not None:
                results.append(EnqueueResult(existing, created=False))
                continue
            limits.check(*_queued_counts(conn, job.owner))
        tag = book.tag(job.queue, job.priority, job.owner) if ok else None
        results.append(_insert(conn, job, row, tag))
    if any(r.created for r in results):
        save_book(conn, book)
    return results


def enqueue_plain_calls(conn: sqlite3.Connection, calls: list[Call]) -> list[list[EnqueueResult]]:
    """Several callers' jobs with no key and no limits (:func:`enqueue_plain` of all of them,
    in the callers' order): one list of results per call."""
    if len(calls) == 1:
        return [enqueue_plain(conn, *calls[0])]
    flat = enqueue_plain(
        conn, [job for jobs, _ in calls for job in jobs], [row for _, rows in calls for row in rows]
    )
    out, start = [], 0
    for jobs, _ in calls:
        out.append(flat[start : start + len(jobs)])
        start += len(jobs)
    return out


def enqueue_plain(
    conn: sqlite3.Connection, jobs: Sequence[NewJob], rows: Sequence[tuple[Any, ...]]
) -> list[EnqueueResult]:
    """Jobs with no key and no limits: nothing can refuse them, so they are tagged (those ready
    now) and inserted by one multi-row statement per :data:`~.statements.INSERT_CHUNK` rows."""
    ready = [row[RUN_AT] <= row[ENQUEUED_AT] for row in rows]
    book = load_book(conn, [fair.tag_key(row) for row, ok in zip(rows, ready, strict=True) if ok])
    params = [
        (*row, book.tag(row[QUEUE], row[PRIORITY], row[OWNER]) if ok else None)
        for row, ok in zip(rows, ready, strict=True)
    ]
    ids: list[int] = []
    for start in range(0, len(params), s.INSERT_CHUNK):
        chunk = params[start : start + s.INSERT_CHUNK]
        statement = s.insert_values(len(chunk))
        # Ids ascend in the order of the rows (AUTOINCREMENT, nothing skipped: no key).
        ids += sorted(r[0] for r in conn.execute(statement, [v for p in chunk for v in p]))
    if len(ids) != len(rows):
        raise sqlite3.DatabaseError(f"inserted {len(ids)} jobs of {len(rows)}")  # never
    if rows:
        save_book(conn, book)
    return [
        EnqueueResult(new_job_record(job, job_id, row[ENQUEUED_AT], row[RUN_AT]), True)
        for job, row, job_id in zip(jobs, rows, ids, strict=True)
    ]


def _queued_counts(conn: sqlite3.Connection, owner: str | None) -> tuple[int, int]:
    """Queued jobs in total and of ``owner``, from the trigger-kept counters."""
    total = conn.execute(s.QUEUED_TOTAL).fetchone()
    owned = None
    if owner is not None:
        owned = conn.execute(s.QUEUED_OF_OWNER, (owner,)).fetchone()
    return (int(total[0]) if total else 0), (int(owned[0]) if owned else 0)


def _insert(
    conn: sqlite3.Connection, new: NewJob, params: tuple[Any, ...], tag: float | None
) -> EnqueueResult:
    row = conn.execute(s.INSERT, (*params, tag)).fetchone()
    if row is not None:  # the stored job is exactly what was inserted: no need to read it back
        return EnqueueResult(new_job_record(new, row[0], params[5], params[6]), created=True)
    existing = conn.execute(f"{s.SELECT} WHERE key = ?", (params[KEY],)).fetchone()
    return EnqueueResult(job_from_row(existing), created=False)


def get(conn: sqlite3.Connection, job_id: int) -> Job | None:
    row = conn.execute(f"{s.SELECT} WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else job_from_row(row)


def get_by_key(conn: sqlite3.Connection, key: str) -> Job | None:
    row = conn.execute(f"{s.SELECT} WHERE key = ?", (key,)).fetchone()
    return None if row is None else job_from_row(row)
