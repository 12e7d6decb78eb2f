"""Where a job is claimed on PostgreSQL: tagging jobs as they become ready and picking the
next starts, under row locks, around :mod:`quart_jobs.fairness` (the SQL is in
:mod:`.statements`; the fair book's reads and writes in :mod:`.book`).

Claims lock the tier clocks of their queues (``FOR UPDATE``, in one order), so concurrent
claims of one queue take turns and the shares stay exact; tagging locks the owners' rows;
starting a job with a concurrency key holds an advisory lock on the key until commit; a
claim that may start jobs with a rate key locks the key's row (its log of starts).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from ... import fairness, rate
from ...models import Job
from ..base import ClaimScope
from ..rows import Candidate, job_from_claimed
from ..shared_sql import fair
from ..shared_sql import rate as rated
from . import statements as q
from .book import save_book, tag

Connection = psycopg.AsyncConnection[TupleRow]


#: How to read a claim's jobs, and, after a partial claim, the rows of
#: :data:`~.statements.NEXT_RUN_AT` read after it (``None`` otherwise).
Read = Callable[[], Awaitable[tuple[list[Job], list[tuple[Any, ...]] | None]]]


async def claim(
    conn: Connection,
    worker: str,
    limit: int,
    now: float,
    lease_seconds: float,
    scope: ClaimScope,
) -> Read:
    """Claim up to ``limit`` jobs in the caller's transaction; returns how to read them (after
    the caller's COMMIT, in pipeline mode: that read then costs no round trip of its own).
    When fewer than ``limit`` are chosen, when the next job is ready is read after the claim's
    write, in its transaction (no round trip of its own either).

    In pipeline mode the due jobs, the tier clocks (locked) and the heads of every tier go in
    one round trip; due jobs, when there are some, are tagged and the heads read again."""
    chosen, claim_cur, at = await _claim(conn, worker, limit, now, lease_seconds, scope)
    next_cur = await conn.execute(q.NEXT_RUN_AT) if len(chosen) < limit else None

    async def read() -> tuple[list[Job], list[tuple[Any, ...]] | None]:
        jobs: list[Job] = []
        if claim_cur is not None:
            by_id = {row[0]: row for row in await claim_cur.fetchall()}
            jobs = [
                job_from_claimed(by_id[job_id], at, worker, at + lease_seconds)
                for job_id in chosen
                if job_id in by_id
            ]
        return jobs, None if next_cur is None else await next_cur.fetchall()

    return read


async def _claim(
    conn: Connection, worker: str, limit: int, now: float, lease_seconds: float, scope: ClaimScope
) -> tuple[list[int], psycopg.AsyncCursor[TupleRow] | None, float]:
    """The claim's statements: the ids chosen, the cursor of their write (``None``: nothing
    chosen) and the claim's time."""
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
    tier_rows = await tiers_cur.fetchall()
    clocks = [fair.clock_from_row(r) for r in tier_rows]
    if heads_cur is None:
        return [], None, now
    locked = {(c.queue, c.priority) for c in clocks}
    heads: dict[tuple[str, int], list[Candidate]] = {}
    for row in await heads_cur.fetchall():
        candidate = Candidate(*row)
        if (candidate.queue, candidate.priority) in locked:  # a tier created meanwhile waits
            heads.setdefault((candidate.queue, candidate.priority), []).append(candidate)
    rate_keys: dict[str, rate.KeyState] = {}
    rated_tiers = sorted((str(r[0]), int(r[1])) for r in tier_rows if r[6])
    if rated_tiers:  # only then: the claim of jobs without a rate key takes no step more
        await _rated_heads(conn, rated_tiers, tasks, 2 * limit + 4, now, heads, rate_keys)
    if not heads:
        return [], None, now
    for found in heads.values():
        found.sort(key=lambda c: (c.tag, c.id))
    keys = sorted({c.concurrency_key for f in heads.values() for c in f if c.concurrency_key})
    running: dict[str, int] = {}
    if keys:
        await conn.execute(q.LOCK_KEYS, (q.CONCURRENCY_LOCK, keys))
        cur = await conn.execute(q.RUNNING_KEYS)
        running = {str(k): int(n) for k, n in await cur.fetchall()}
    book = fairness.FairBook(clocks)
    now = fairness.claim_time(clocks, now)  # started_at in the order of the claims' commits
    limits = rate.limits_of(c for f in heads.values() for c in f) if rate_keys else {}
    if limits:
        now = rate.floor(rate_keys, now)  # a key's starts never go back in time
    budgets = rate.budgets(limits, rate_keys, now) if limits else None
    starts = book.start(heads, limit, scope.weights, now, running, budgets=budgets)
    if limits:
        changed = rate.settle(limits, rate_keys, rate.started(starts), now)
        for params in rated.save_params(changed):
            await conn.execute(q.SAVE_KEY, params)
    chosen = [c.id for c in starts]
    if not chosen:
        return [], None, now
    await save_book(conn, book)
    tokens = [secrets.token_hex(8) for _ in chosen]
    claim_cur = await conn.execute(q.CLAIM, (now, worker, now + lease_seconds, chosen, tokens))
    return chosen, claim_cur, now


async def _rated_heads(
    conn: Connection,
    tiers: list[tuple[str, int]],
    tasks: tuple[str, ...],
    fetch: int,
    now: float,
    heads: dict[tuple[str, int], list[Candidate]],
    keys: dict[str, rate.KeyState],
) -> None:
    """Add the first ``fetch`` jobs of each open rate key of ``tiers`` to ``heads``, and the
    keys' rows, locked, to ``keys``: two round trips, one to find the open keys of each range,
    one to lock their rows and read their jobs."""
    ranges = [(queue, priority, task) for queue, priority in tiers for task in tasks]
    cursors = [await conn.execute(q.RATED_KEYS, rated.rated_keys_params(*r)) for r in ranges]
    open_keys = {
        r: rated.open_keys(await cur.fetchall(), now)
        for r, cur in zip(ranges, cursors, strict=True)
    }
    names = sorted({key for found in open_keys.values() for key in found})
    if not names:
        return
    await conn.execute(q.ENSURE_RATE_KEYS, (names,))
    lock_cur = await conn.execute(q.LOCK_RATE_KEYS, (names,))
    head_cursors = [
        await conn.execute(q.RATED_HEADS, (*r, key, fetch))
        for r, found in open_keys.items()
        for key in found
    ]
    for row in await lock_cur.fetchall():
        keys[str(row[0])] = rated.state_from_row(row[1:])
    for cur in head_cursors:
        for row in await cur.fetchall():
            candidate = Candidate(*row)
            heads.setdefault((candidate.queue, candidate.priority), []).append(candidate)
