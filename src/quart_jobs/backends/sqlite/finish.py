"""How outcomes are recorded on SQLite, in the writer's transaction: each write presents its
lease and changes nothing if the lease is no longer held."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from ...models import JobState, Lease, Progress
from ..base import Outcome
from ..shared_sql import jobs
from ..shared_sql.dialect import SQLITE
from . import statements as s


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
    successes = [n for n, o in enumerate(outcomes) if o.state is JobState.SUCCEEDED]
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
    for n, o in enumerate(outcomes):
        if o.state is not JobState.SUCCEEDED:
            statement, params = jobs.finish_statement(o, now, SQLITE)
            changed = conn.execute(statement, params).rowcount
            direct += max(0, changed)
            held[n] = changed == 1
    return held, conn.total_changes - before > direct


def write_progress(conn: sqlite3.Connection, reports: Sequence[tuple[Lease, Progress]]) -> int:
    """Write reported progress where the lease is still held (nothing to do: no statement);
    how many rows changed."""
    changed = 0
    for start in range(0, len(reports), jobs.LEASE_CHUNK // 2):
        chunk = reports[start : start + jobs.LEASE_CHUNK // 2]
        cur = conn.execute(jobs.progress_statement(len(chunk), SQLITE), jobs.progress_params(chunk))
        changed += max(0, cur.rowcount)
    return changed
