"""The fair claim on PostgreSQL: tagging jobs as they become ready and picking the next
starts, under row locks, around :mod:`quart_jobs.policy` (the SQL is in :mod:`.fair_sql` and
:mod:`.postgres_sql`).

Claims lock the tier clocks of their queues (``FOR UPDATE``, in one order), so concurrent
claims of one queue take turns and the shares stay exact; tagging locks the owners' rows;
starting a job with a concurrency key holds an advisory lock on the key until commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from .. import policy
from ..models import Job
from . import fair_sql as fair
from . import postgres_sql as q
from .base import Candidate, ClaimScope, job_from_row
from .sql import ENQUEUED_AT, RUN_AT

Connection = psycopg.AsyncConnection[TupleRow]


async def load_book(
    conn: Connection, keys: Sequence[tuple[str, int, str | None]]
) -> policy.FairBook:
    """The tier clocks and the next tags of the owners in ``keys``, their rows locked."""
    owners = fair.owner_keys(keys)
    columns = [list(c) for c in zip(*owners, strict=True)] if owners else [[], [], []]
    await conn.execute(q.ADD_OWNERS, columns)
    cur = await conn.execute(q.LOCK_OWNERS, columns)
    next_tags = {(str(a), int(b), str(c)): float(t) for a, b, c, t in await cur.fetchall()}
    cur = await conn.execute(fair.TIERS)
    clocks = [fair.clock_from_row(r) for r in await cur.fetchall()]
    return policy.FairBook(clocks, next_tags)


async def save_book(conn: Connection, book: policy.FairBook) -> None:
    """Write back the owners' next tags and the tier clocks that changed."""
    async with conn.cursor() as cur:
        if book.owners_changed:
            await cur.executemany(
                fair.render(fair.SAVE_OWNER, "postgresql"), fair.owner_params(book)
            )
            tiers = sorted({k[:2] for k in book.owners_changed})
            await cur.executemany(fair.render(fair.ENSURE_TIER, "postgresql"), tiers)
        if book.clocks_changed:
            await cur.executemany(
                fair.render(fair.SAVE_TIER, "postgresql"),
                [fair.clock_params(book.clocks[k]) for k in sorted(book.clocks_changed)],
            )


async def tag_rows(
    conn: Connection, rows: Sequence[tuple[Any, ...]]
) -> tuple[policy.FairBook, list[tuple[Any, ...]]]:
    """The insert rows with their tag appended (``None`` for a job not ready yet)."""
    ready = [row[RUN_AT] <= row[ENQUEUED_AT] for row in rows]
    if not any(ready):
        return policy.FairBook(), [(*row, None) for row in rows]
    book = await load_book(conn, [fair.tag_key(r) for r, ok in zip(rows, ready, strict=True) if ok])
    tagged = [
        (*row, book.tag(*fair.tag_key(row)) if ok else None)
        for row, ok in zip(rows, ready, strict=True)
    ]
    return book, tagged


async def tag_due(conn: Connection, now: float) -> None:
    """Tag the queued jobs whose ``run_at`` passed, in the order they became ready."""
    cur = await conn.execute(q.DUE, (now, fair.TAG_BATCH))
    due = await cur.fetchall()
    if not due:
        return
    book = await load_book(conn, [(qu, p, o) for _, qu, p, o in due])
    tags = [book.tag(qu, p, o) for _, qu, p, o in due]
    await conn.execute(q.SET_TAGS, ([row[0] for row in due], tags))
    await save_book(conn, book)


async def claim(
    conn: Connection, worker: str, limit: int, now: float, lease_seconds: float, scope: ClaimScope
) -> list[Job]:
    """Claim up to ``limit`` jobs in the caller's transaction."""
    await tag_due(conn, now)
    queues = None if scope.queues is None else list(scope.queues)
    cur = await conn.execute(q.LOCK_TIERS, (queues, queues))
    clocks = [fair.clock_from_row(r) for r in await cur.fetchall()]
    tasks = scope.tasks
    if tasks is None:
        cur = await conn.execute(fair.QUEUED_TASKS)
        tasks = tuple(r[0] for r in await cur.fetchall())
    ranges = [(c.queue, c.priority, task) for c in clocks for task in tasks]
    if not ranges:
        return []
    columns = [list(c) for c in zip(*ranges, strict=True)]
    cur = await conn.execute(q.HEADS, (*columns, 2 * limit + 4))
    heads: dict[tuple[str, int], list[Candidate]] = {}
    for row in await cur.fetchall():
        candidate = Candidate(*row)
        heads.setdefault((candidate.queue, candidate.priority), []).append(candidate)
    if not heads:
        return []
    for found in heads.values():
        found.sort(key=lambda c: (c.tag, c.id))
    keys = sorted({c.concurrency_key for f in heads.values() for c in f if c.concurrency_key})
    running: dict[str, int] = {}
    if keys:
        await conn.execute(q.LOCK_KEYS, (q.CONCURRENCY_LOCK, keys))
        cur = await conn.execute(fair.RUNNING_KEYS)
        running = {str(k): int(n) for k, n in await cur.fetchall()}
    book = policy.FairBook(clocks)
    now = policy.claim_time(clocks, now)  # started_at in the order of the claims' commits
    chosen = [c.id for c in book.start(heads, limit, scope.weights, now, running)]
    if not chosen:
        return []
    await save_book(conn, book)
    tokens = [secrets.token_hex(8) for _ in chosen]
    cur = await conn.execute(q.CLAIM, (now, worker, now + lease_seconds, chosen, tokens))
    by_id = {job.id: job for job in map(job_from_row, await cur.fetchall())}
    return [by_id[job_id] for job_id in chosen if job_id in by_id]
