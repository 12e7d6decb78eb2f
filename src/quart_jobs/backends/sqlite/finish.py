"""How outcomes are recorded on SQLite, in the writer's transaction: each write presents its
lease and changes nothing if the lease is no longer held."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace

from ...models import JobState, Lease, Progress
from ..base import Outcome
from ..effects import Effects, EffectsFailed, run_effects
from ..shared_sql import jobs
from ..shared_sql.dialect import SQLITE
from . import statements as s
from .transaction import SQLiteTransaction


def finish(
    conn: sqlite3.Connection, outcomes: Sequence[Outcome], now: float
) -> tuple[list[bool], bool]:
    """Record outcomes in the caller's transaction; ``False`` for each refused (lease lost).
    Successes, the common case, are written by one statement per batch of 400.

    Also says whether the writes changed more rows than their own (the dependency trigger
    queued or cancelled dependants, or a requeue moved the queued counters): then the caller
    wakes the workers of every process, as an enqueue does."""
    before = conn.total_changes
    direct = write_progress(conn, jobs.outcome_progress(outcomes))
    held = [False] * len(outcomes)
    successes = [
        n for n, o in enumerate(outcomes) if o.state is JobState.SUCCEEDED and o.effects is None
    ]
    for start in range(0, len(successes), jobs.LEASE_CHUNK):
        chunk = successes[start : start + jobs.LEASE_CHUNK]
        results = {
            str(outcomes[n].lease.job_id): outcomes[n].result
            for n in chunk
            if outcomes[n].result is not None
        }
        leases = [v for n in chunk for v in (outcomes[n].lease.job_id, outcomes[n].lease.token)]
        done = {
            r[0]
            for r in conn.execute(
                s.succeed_statement(len(chunk)), (now, json.dumps(results), *leases)
            )
        }
        direct += len(done)
        for n in chunk:
            held[n] = outcomes[n].lease.job_id in done
    enqueued = False
    for n, o in enumerate(outcomes):
        if o.effects is not None and o.state is JobState.SUCCEEDED:
            held[n], changes, enqueues = _with_effects(conn, o, o.effects, now)
            direct += changes
            enqueued = enqueued or enqueues
        elif o.state is not JobState.SUCCEEDED:
            statement, params = jobs.finish_statement(o, now, SQLITE)
            changed = conn.execute(statement, params).rowcount
            direct += max(0, changed)
            held[n] = changed == 1
    return held, enqueued or conn.total_changes - before > direct


def _with_effects(
    conn: sqlite3.Connection, o: Outcome, effects: Effects, now: float
) -> tuple[bool, int, bool]:
    """A success and its effects, in a savepoint: whether its lease was held, how many rows
    the outcome and the effects changed themselves, and whether the effects enqueued jobs.
    When the effects raise, the savepoint is rolled back and the failure recorded instead."""
    tx = SQLiteTransaction(conn, now)
    conn.execute("SAVEPOINT qj_effects")
    try:
        if not tx.finish(replace(o, progress=None)):  # its progress is written above
            return False, 0, False
        changes = conn.total_changes
        try:
            run_effects(effects, tx)
        except EffectsFailed as failed:
            conn.execute("ROLLBACK TO qj_effects")
            return tx.finish(effects.fail(failed.error)), 1, False
        return True, 1 + conn.total_changes - changes, tx.enqueued
    finally:
        tx.closed = True
        conn.execute("RELEASE qj_effects")


def write_progress(conn: sqlite3.Connection, reports: Sequence[tuple[Lease, Progress]]) -> int:
    """Write reported progress where the lease is still held (nothing to do: no statement);
    how many rows changed."""
    changed = 0
    for start in range(0, len(reports), jobs.LEASE_CHUNK // 2):
        chunk = reports[start : start + jobs.LEASE_CHUNK // 2]
        cur = conn.execute(jobs.progress_statement(len(chunk), SQLITE), jobs.progress_params(chunk))
        changed += max(0, cur.rowcount)
    return changed
