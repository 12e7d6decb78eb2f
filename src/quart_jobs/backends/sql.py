"""SQL shared by the SQLite and PostgreSQL backends, each statement written once with ``?``
placeholders and rendered per dialect by :func:`render` (PostgreSQL takes ``%s``)."""

from __future__ import annotations

import json
from typing import Any

from ..models import JobFilter, NewJob


def filter_sql(flt: JobFilter, placeholder: str) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (or ``""``) and its parameters for a :class:`JobFilter`."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("state", None if flt.state is None else flt.state.value),
        ("priority", flt.priority),
        ("task", flt.task),
        ("owner", flt.owner),
        ("queue", flt.queue),
    ):
        if value is not None:
            clauses.append(f"{column} = {placeholder}")
            params.append(value)
    if flt.before_id is not None:
        clauses.append(f"id < {placeholder}")
        params.append(flt.before_id)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def insert_params(job: NewJob, now: float, offset: float = 0.0) -> tuple[Any, ...]:
    """One job's insert parameters: task, args, kwargs, priority, max_attempts, enqueued_at,
    run_at, owner, key, timeout, queue, concurrency_key, concurrency_limit (both backends'
    INSERT take them in this order, then the job's tag). ``now`` is the store's time already;
    ``offset`` moves the job's own ``run_at`` (the caller's clock) onto the store's."""
    args_json, kwargs_json = job.encoded or (
        json.dumps(list(job.args), separators=(",", ":"), allow_nan=False),
        json.dumps(dict(job.kwargs), separators=(",", ":"), allow_nan=False),
    )
    return (
        job.task,
        args_json,
        kwargs_json,
        job.priority,
        job.max_attempts,
        float(now),
        float(now if job.run_at is None else job.run_at + offset),
        job.owner,
        job.key,
        None if job.timeout is None else float(job.timeout),
        job.queue,
        job.concurrency_key,
        job.concurrency_limit,
    )


# Positions in :func:`insert_params`.
TASK, PRIORITY, ENQUEUED_AT, RUN_AT, OWNER, KEY, QUEUE = 0, 3, 5, 6, 7, 8, 10


def render(statement: str, dialect: str) -> str:
    """``statement`` for ``sqlite`` (as written) or ``postgresql``: ``?`` placeholders become
    ``%s`` (a ``?`` inside a quoted literal stays), a literal ``%`` is doubled."""
    if dialect == "sqlite":
        return statement
    parts = statement.split("'")
    for i in range(0, len(parts), 2):  # outside quotes
        parts[i] = parts[i].replace("%", "%%").replace("?", "%s")
    return "'".join(parts)


# Requeue (or fail, when out of attempts) the running jobs whose lease expired; a requeued job
# keeps its tag, so it keeps its place.
RECOVER_EXPIRED = (
    "UPDATE qj_jobs SET "
    "error = 'lease expired: worker ' || COALESCE(worker, '?') || ' stopped answering', "
    "lease_token = NULL, lease_expires_at = NULL, "
    "finished_at = CASE WHEN attempts >= max_attempts THEN CAST(? AS DOUBLE PRECISION) END, "
    "worker = CASE WHEN attempts >= max_attempts THEN worker END, "
    "state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END "
    "WHERE state = 'running' AND lease_expires_at < ?"
)
STATS_BY_STATE = "SELECT state, priority, COUNT(*) FROM qj_jobs GROUP BY state, priority"
STATS_OLDEST = (
    "SELECT priority, MIN(enqueued_at) FROM qj_jobs WHERE state = 'queued' GROUP BY priority"
)
STATS_BY_QUEUE = "SELECT queue, state, COUNT(*) FROM qj_jobs GROUP BY queue, state"
NEXT_RUN_AT = "SELECT MIN(run_at) FROM qj_jobs WHERE state = 'queued'"
# Schema bookkeeping: one row per component with the number of its scripts applied.
SCHEMA_TABLE = (
    "CREATE TABLE IF NOT EXISTS qj_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)
SCHEMA_VERSION = "SELECT version FROM qj_schema WHERE component = ?"
SCHEMA_SET_VERSION = (
    "INSERT INTO qj_schema (component, version) VALUES (?, ?) "
    "ON CONFLICT (component) DO UPDATE SET version = excluded.version"
)
