"""Where a job is claimed on PostgreSQL: tagging jobs as they become ready and picking the
next starts, under row locks, around :mod:`quart_jobs.policy` (the SQL is in
:mod:`.statements`; the fair book's reads and writes in :mod:`.book`).

Claims lock the tier clocks of their queues (``FOR UPDATE``, in one order), so concurrent
claims of one queue take turns and the shares stay exact; tagging locks the owners' rows;
starting a job with a concurrency key holds an advisory lock on the key until commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

import psycopg
from psycopg.rows import TupleRow

from ... import policy
from ...models import Job
from ..base import Candidate, ClaimScope, job_from_row
from ..shared_sql import fair
from . import statements as q
from .book import save_book, tag

Connection = psycopg.AsyncConnection[TupleRow]


async def claim(
    conn: Connection, worker: str, limit: int, now: float, lease_seconds: float, scope: ClaimScope
) -> Callable[[], Awaitable[list[Job]]]:
    """Claim up to ``limit`` jobs in the caller's transaction; returns how to read them (after
    the caller's COMMIT, in pipeline mode: that read then costs no round trip of its own).

    In pipeline mode the due jobs, the tier clocks (locked) and the heads of every tier go in
    one round trip; due jobs, when there are some, are tagged and the heads read again."""
    queues = None if scope.queues is None else list(scope.queues)
    tasks = scope.tasks
    if tasks is None:  # the tasks of tagged jobs: read again after tagging due ones
        cur = await conn.execute(q.DUE, (now, fair.TAG_BATCH))
        tasks_cur = await conn.execute(q.QUEUED_TASKS)
        first_due = await cur.fetchall()
        if first_due:
            await tag(conn, first_due)
            tasks_cur = await conn.execute(q.QUEUED_TASKS)
        tasks = tuple(r[0] for r in await tasks_cur.fetchall())
        due_cur = None
    else:
        due_cur = await conn.execute(q.DUE, (now, fair.TAG_BATCH))
    heads_params = (queues, queues, list(tasks), 2 * limit + 4)
    tiers_cur = await conn.execute(q.LOCK_TIERS, (queues, queues))
    heads_cur = await conn.execute(q.HEADS_OF_TIERS, heads_params) if tasks else None
    due = [] if due_cur is None else await due_cur.fetchall()
    if due:  # tagging may create tiers: lock and read them again, with the heads
        await tag(conn, due)
        tiers_cur = await conn.execute(q.LOCK_TIERS, (queues, queues))
        heads_cur = await conn.execute(q.HEADS_OF_TIERS, heads_params) if tasks else None
    clocks = [fair.clock_from_row(r) for r in await tiers_cur.fetchall()]
    if heads_cur is None:
        return _nothing
    locked = {(c.queue, c.priority) for c in clocks}
    heads: dict[tuple[str, int], list[Candidate]] = {}
    for row in await heads_cur.fetchall():
        candidate = Candidate(*row)
        if (candidate.queue, candidate.priority) in locked:  # a tier created meanwhile waits
            heads.setdefault((candidate.queue, candidate.priority), []).append(candidate)
    if not heads:
        return _nothing
    for found in heads.values():
        found.sort(key=lambda c: (c.tag, c.id))
    keys = sorted({c.concurrency_key for f in heads.values() for c in f if c.concurrency_key})
    running: dict[str, int] = {}
    if keys:
        await conn.execute(q.LOCK_KEYS, (q.CONCURRENCY_LOCK, keys))
        cur = await conn.execute(q.RUNNING_KEYS)
        running = {str(k): int(n) for k, n in await cur.fetchall()}
    book = policy.FairBook(clocks)
    now = policy.claim_time(clocks, now)  # started_at in the order of the claims' commits
    chosen = [c.id for c in book.start(heads, limit, scope.weights, now, running)]
    if not chosen:
        return _nothing
    await save_book(conn, book)
    tokens = [secrets.token_hex(8) for _ in chosen]
    claim_cur = await conn.execute(q.CLAIM, (now, worker, now + lease_seconds, chosen, tokens))

    async def read() -> list[Job]:
        by_id = {job.id: job for job in map(job_from_row, await claim_cur.fetchall())}
        return [by_id[job_id] for job_id in chosen if job_id in by_id]

    return read


async def _nothing() -> list[Job]:
    return []
