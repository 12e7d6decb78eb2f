"""SQL shared by the SQLite and PostgreSQL backends (their placeholders differ: ``?``, ``%s``)."""

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


def insert_params(job: NewJob, now: float) -> tuple[Any, ...]:
    """One job's insert parameters: task, args, kwargs, priority, max_attempts, enqueued_at,
    run_at, owner, key, timeout, queue, concurrency_key, concurrency_limit (both backends'
    INSERT take them in this order, then the job's tag)."""
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
        float(now if job.run_at is None else job.run_at),
        job.owner,
        job.key,
        None if job.timeout is None else float(job.timeout),
        job.queue,
        job.concurrency_key,
        job.concurrency_limit,
    )


# Positions in :func:`insert_params`.
TASK, PRIORITY, ENQUEUED_AT, RUN_AT, OWNER, KEY, QUEUE = 0, 3, 5, 6, 7, 8, 10
