"""Where a job is claimed on SQLite: in the writer's transaction (``BEGIN IMMEDIATE``), so
claims, their tier clocks and concurrency counts are serialized by the write lock."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence

from ... import policy
from ...models import Job
from ..base import Candidate, ClaimScope, job_from_row
from ..shared_sql import fair
from . import statements as s
from .book import tag_due


def claim(
    conn: sqlite3.Connection,
    worker: str,
    limit: int,
    now: float,
    lease_seconds: float,
    scope: ClaimScope,
) -> list[Job]:
    """Claim up to ``limit`` jobs in the caller's transaction.

    Each (queue, priority, task) the worker may claim is one range of the named partial index
    ``qj_jobs_fair`` in ``(tag, id)`` order; :mod:`quart_jobs.policy` picks among the ranges'
    first jobs. Named, because without statistics the planner would scan and sort."""
    tag_due(conn, now)
    clocks = [fair.clock_from_row(r) for r in conn.execute(s.CLAIM_TIERS)]  # not paused
    if scope.queues is not None:
        clocks = [c for c in clocks if c.queue in scope.queues]
    tasks = scope.tasks
    if tasks is None:
        tasks = tuple(r[0] for r in conn.execute(s.QUEUED_TASKS))
    heads: dict[tuple[str, int], list[Candidate]] = {}
    for clock in clocks:
        # A tier gives at most ``limit`` starts: its first ``limit`` jobs are enough unless
        # one has a concurrency key (a job at its key's limit is skipped): then read more.
        found = _heads(conn, clock, tasks, limit)
        if any(c.concurrency_key is not None for c in found):
            found = _heads(conn, clock, tasks, 2 * limit + 4)
        if found:
            heads[(clock.queue, clock.priority)] = found
    if not heads:
        return []
    keyed = any(c.concurrency_key is not None for found in heads.values() for c in found)
    running = dict(conn.execute(s.RUNNING_KEYS).fetchall()) if keyed else {}
    book = policy.FairBook(clocks)
    now = policy.claim_time(clocks, now)  # started_at in the order of the claims' commits
    chosen = book.start(heads, limit, scope.weights, now, running)
    if not chosen:
        return []
    conn.executemany(s.SAVE_TIER, [fair.clock_params(book.clocks[k]) for k in book.clocks_changed])
    order = {c.id: n for n, c in enumerate(chosen)}
    # One fresh token for this claim: (job id, token) names each lease uniquely.
    rows = conn.execute(
        s.claim_statement(len(chosen)),
        (now, worker, secrets.token_hex(8), now + lease_seconds, *order),
    ).fetchall()
    return sorted((job_from_row(r) for r in rows), key=lambda j: order[j.id])


def _heads(
    conn: sqlite3.Connection, clock: policy.TierClock, tasks: Sequence[str], fetch: int
) -> list[Candidate]:
    """The first ``fetch`` claimable jobs of each task in the tier, in ``(tag, id)`` order."""
    found = [
        Candidate._make(r)
        for task in tasks
        for r in conn.execute(s.HEADS, (clock.queue, clock.priority, task, fetch))
    ]
    if len(tasks) > 1:  # one task's range is in (tag, id) order already
        found.sort(key=lambda c: (c.tag, c.id))
    return found
