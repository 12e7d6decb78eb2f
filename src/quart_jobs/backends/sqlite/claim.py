"""Where a job is claimed on SQLite: in the writer's transaction (``BEGIN IMMEDIATE``), so
claims, their tier clocks, concurrency counts and rate keys' logs are serialized by the write
lock."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence

from ... import fairness, rate
from ...models import Job
from ..base import ClaimScope
from ..rows import Candidate, job_from_claimed
from ..shared_sql import fair
from ..shared_sql import rate as rated
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
    ``qj_jobs_fair`` in ``(tag, id)`` order; :mod:`quart_jobs.fairness` picks among the ranges'
    first jobs. Named, because without statistics the planner would scan and sort. A tier with
    ready jobs that have a rate key adds the first jobs of each open key (``qj_jobs_rated``)."""
    tag_due(conn, now)
    rows = conn.execute(s.CLAIM_TIERS).fetchall()  # tiers of queues not paused
    clocks = [fair.clock_from_row(r) for r in rows]
    rated_tiers = {(r[0], r[1]) for r in rows if r[6]}
    if scope.queues is not None:
        clocks = [c for c in clocks if c.queue in scope.queues]
    tasks = scope.tasks
    if tasks is None:
        tasks = tuple(r[0] for r in conn.execute(s.QUEUED_TASKS))
    heads: dict[tuple[str, int], list[Candidate]] = {}
    keys: dict[str, rate.KeyState] = {}
    for clock in clocks:
        # A tier gives at most ``limit`` starts: its first ``limit`` jobs are enough unless
        # one has a concurrency key (a job at its key's limit is skipped): then read more.
        tier_rated = (clock.queue, clock.priority) in rated_tiers
        fetch = limit
        while True:
            found = _heads(conn, clock, tasks, fetch)
            if tier_rated:
                found += _rated_heads(conn, clock, tasks, fetch, now, keys)
                found.sort(key=lambda c: (c.tag, c.id))
            if fetch > limit or all(c.concurrency_key is None for c in found):
                break
            fetch = 2 * limit + 4
        if found:
            heads[(clock.queue, clock.priority)] = found
    if not heads:
        return []
    keyed = any(c.concurrency_key is not None for found in heads.values() for c in found)
    running = dict(conn.execute(s.RUNNING_KEYS).fetchall()) if keyed else {}
    book = fairness.FairBook(clocks)
    now = fairness.claim_time(clocks, now)  # started_at in the order of the claims' commits
    limits = rate.limits_of(c for found in heads.values() for c in found) if keys else {}
    if limits:
        now = rate.floor(keys, now)  # a key's starts never go back in time
    budgets = rate.budgets(limits, keys, now) if limits else None
    chosen = book.start(heads, limit, scope.weights, now, running, budgets=budgets)
    if limits:
        changed = rate.settle(limits, keys, rate.started(chosen), now)
        conn.executemany(s.SAVE_KEY, rated.save_params(changed))
    if not chosen:
        return []
    conn.executemany(s.SAVE_TIER, [fair.clock_params(book.clocks[k]) for k in book.clocks_changed])
    ids = [c.id for c in chosen]
    # One fresh token for this claim: (job id, token) names each lease uniquely.
    expires = now + lease_seconds
    claimed = conn.execute(
        s.claim_statement(len(ids)), (now, worker, secrets.token_hex(8), expires, *ids)
    )
    by_id = {r[0]: r for r in claimed}
    return [job_from_claimed(by_id[i], now, worker, expires) for i in ids if i in by_id]


def _heads(
    conn: sqlite3.Connection, clock: fairness.TierClock, tasks: Sequence[str], fetch: int
) -> list[Candidate]:
    """The first ``fetch`` claimable jobs of each task in the tier, in ``(tag, id)`` order."""
    found = [
        Candidate(*r)
        for task in tasks
        for r in conn.execute(s.HEADS, (clock.queue, clock.priority, task, fetch))
    ]
    if len(tasks) > 1:  # one task's range is in (tag, id) order already
        found.sort(key=lambda c: (c.tag, c.id))
    return found


def _rated_heads(
    conn: sqlite3.Connection,
    clock: fairness.TierClock,
    tasks: Sequence[str],
    fetch: int,
    now: float,
    keys: dict[str, rate.KeyState],
) -> list[Candidate]:
    """The first ``fetch`` jobs of each open rate key in the tier; ``keys`` gets their rows."""
    found: list[Candidate] = []
    for task in tasks:
        range_ = (clock.queue, clock.priority, task)
        found_keys = conn.execute(s.RATED_KEYS, rated.rated_keys_params(*range_)).fetchall()
        for key in rated.open_keys(found_keys, now):
            if key not in keys:
                keys[key] = rated.state_from_row(conn.execute(s.KEY_STATE, (key,)).fetchone())
            found += [Candidate(*r) for r in conn.execute(s.RATED_HEADS, (*range_, key, fetch))]
    return found
