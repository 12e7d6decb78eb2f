"""The job table's SQL shared by the SQLite and PostgreSQL backends, each statement written
once (``?`` placeholders, ``{slot}`` names) and rendered per dialect by
:func:`~.dialect.render`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...models import JobFilter, JobState, Lease, NewJob, Progress
from ..base import BackendTransaction, Heartbeat, Outcome
from ..rows import JOB_COLUMNS
from . import deps
from .dialect import render
from .pauses import NOT_PAUSED


def filter_sql(flt: JobFilter) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (or ``""``, ``?`` placeholders) and its parameters for a
    :class:`JobFilter`."""
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
            clauses.append(f"{column} = ?")
            params.append(value)
    if flt.before_id is not None:
        clauses.append("id < ?")
        params.append(flt.before_id)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def insert_params(job: NewJob, now: float, offset: float = 0.0) -> tuple[Any, ...]:
    """One job's insert parameters: task, args, kwargs, priority, max_attempts, enqueued_at,
    run_at, owner, key, timeout, queue, concurrency_key, concurrency_limit, rate_key,
    rate_limit, rate_period, trace_context (both backends' INSERT take them in this order,
    then the job's tag). ``now`` is the store's time already;
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
        job.rate_key,
        None if job.rate_limit is None else job.rate_limit.n,
        None if job.rate_limit is None else job.rate_limit.period,
        job.trace_context,
    )


# Positions in :func:`insert_params`.
TASK, PRIORITY, ENQUEUED_AT, RUN_AT, OWNER, KEY, QUEUE = 0, 3, 5, 6, 7, 8, 10


# A job back in the queue starts its next attempt without progress; one that ends keeps it.
_PROGRESS_IF = (
    "progress = CASE WHEN {ends} THEN progress END, "
    "progress_message = CASE WHEN {ends} THEN progress_message END"
)

# Requeue (or fail, when out of attempts) the running jobs whose lease expired; a requeued job
# keeps its tag, so it keeps its place.
RECOVER_EXPIRED = (
    "UPDATE qj_jobs SET "
    "error = 'lease expired: worker ' || COALESCE(worker, '?') || ' stopped answering', "
    "lease_token = NULL, lease_expires_at = NULL, "
    "finished_at = CASE WHEN attempts >= max_attempts THEN CAST(? AS DOUBLE PRECISION) END, "
    "worker = CASE WHEN attempts >= max_attempts THEN worker END, "
    + _PROGRESS_IF.format(ends="attempts >= max_attempts")
    + ", state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, "
    "why = 'lease_expired' "
    "WHERE state = 'running' AND lease_expires_at < ?"
)
STATS_BY_STATE = "SELECT state, priority, COUNT(*) FROM qj_jobs GROUP BY state, priority"
STATS_OLDEST = (
    "SELECT priority, MIN(enqueued_at) FROM qj_jobs WHERE state = 'queued' GROUP BY priority"
)
STATS_BY_QUEUE = "SELECT queue, state, COUNT(*) FROM qj_jobs GROUP BY queue, state"
# When the next queued job is ready, per tier of a queue that is not paused: the run_at of one
# of its ready (tagged) jobs without a rate key, which has passed (one step down qj_jobs_fair,
# in its order so that PostgreSQL walks it too), or NULL; the earliest opening among the rate
# keys with ready jobs in the tier (a key without a row never started a job: open), or NULL;
# then, queue NULL, the earliest run_at of the jobs not yet tagged (one step down qj_jobs_due).
# The caller keeps the rows of the queues it claims from.
NEXT_RUN_AT = (
    "SELECT t.queue, (SELECT run_at FROM qj_jobs{fair} WHERE state = 'queued' "
    "AND tag IS NOT NULL AND rate_key IS NULL AND queue = t.queue AND priority = t.priority "
    "ORDER BY task, tag, id LIMIT 1) FROM qj_fair_tiers AS t "
    f"WHERE {NOT_PAUSED} "
    "UNION ALL SELECT t.queue, (SELECT MIN(COALESCE(k.open_at, 0)) FROM (SELECT DISTINCT "
    "rate_key FROM qj_jobs{rated} WHERE state = 'queued' AND tag IS NOT NULL "
    "AND rate_key IS NOT NULL AND queue = t.queue AND priority = t.priority) AS r "
    "LEFT JOIN qj_rate_keys AS k ON k.key = r.rate_key) FROM qj_fair_tiers AS t "
    f"WHERE {NOT_PAUSED} "
    "UNION ALL SELECT NULL, MIN(run_at) FROM qj_jobs{due} WHERE state = 'queued' AND tag IS NULL"
)


def next_run_at(rows: Sequence[tuple[Any, ...]], queues: Sequence[str] | None) -> float | None:
    """The earliest time in the rows of :data:`NEXT_RUN_AT` of the queues given (``None``:
    every queue), on the store's clock."""
    return min(
        (
            float(at)
            for queue, at in rows
            if at is not None and (queue is None or queues is None or queue in queues)
        ),
        default=None,
    )


# The lease a finishing or beating worker must still hold, and clearing it.
HELD = "id = ? AND lease_token = ? AND state = 'running'"
CLEAR_LEASE = "worker = NULL, lease_token = NULL, lease_expires_at = NULL"
# Finishing one job: back to the queue (a refund gives the attempt back; a new run_at drops
# the tag, so the job takes a new place), a retry after a failure, or an end state. A job whose
# cancel was requested while it ran ends cancelled instead of going back to the queue (the
# cancel arrived after its attempt ended, before the outcome was written). Parameters of both
# start with the store's time (its ``finished_at`` then). ``why`` says why the attempt ended.
_BACK_OR_CANCELLED = (
    "state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END, "
    "finished_at = CASE WHEN cancel_requested THEN CAST(? AS DOUBLE PRECISION) END, "
    + _PROGRESS_IF.format(ends="cancel_requested")
)
FINISH_REQUEUE = (
    f"UPDATE qj_jobs SET {_BACK_OR_CANCELLED}, attempts = attempts - ?, "
    "why = CASE WHEN cancel_requested THEN 'cancelled' ELSE why END, "
    "run_at = COALESCE(CAST(? AS DOUBLE PRECISION), run_at), "
    "tag = CASE WHEN CAST(? AS DOUBLE PRECISION) IS NULL THEN tag END, "
    f"cancel_requested = false, {CLEAR_LEASE} WHERE {HELD}"
)
FINISH_RETRY_LATER = (
    f"UPDATE qj_jobs SET {_BACK_OR_CANCELLED}, run_at = ?, tag = NULL, error = ?, "
    "traceback = ?, why = CASE WHEN cancel_requested THEN 'cancelled' ELSE ? END, "
    f"cancel_requested = false, {CLEAR_LEASE} WHERE {HELD}"
)
FINISH_END = (
    "UPDATE qj_jobs SET state = ?, finished_at = ?, result = ?, error = ?, traceback = ?, "
    f"why = ?, lease_token = NULL, lease_expires_at = NULL WHERE {HELD}"
)


def finish_statement(
    o: Outcome, now: float, dialect: str, offset: float = 0.0
) -> tuple[str, tuple[Any, ...]]:
    """The statement (rendered for ``dialect``) and parameters recording one outcome; it
    changes one row if the lease is still held, none otherwise. ``now`` is the store's time
    already; ``offset`` moves the outcome's ``run_at`` (the caller's clock) onto it."""
    held = (o.lease.job_id, o.lease.token)
    run_at = None if o.run_at is None else o.run_at + offset
    if o.state is JobState.QUEUED:
        params: tuple[Any, ...] = (now, 1 if o.refund else 0, run_at, run_at, *held)
        return render(FINISH_REQUEUE, dialect), params
    if o.state is JobState.FAILED and o.run_at is not None:
        params = (now, run_at, o.error, o.traceback, o.why_text, *held)
        return render(FINISH_RETRY_LATER, dialect), params
    params = (o.state.value, now, o.result, o.error, o.traceback, o.why_text, *held)
    return render(FINISH_END, dialect), params


# An operator's retry of a failed or cancelled job: queued afresh, attempts reset. A job with
# parents is retried only when it could run now: each parent succeeded (or ended, for a job
# that runs whatever happens).
RETRY = (
    "UPDATE qj_jobs SET state = 'queued', attempts = 0, run_at = ?, tag = NULL, "
    "finished_at = NULL, cancel_requested = false, result = NULL, error = NULL, "
    f"traceback = NULL, why = NULL, progress = NULL, progress_message = NULL, {CLEAR_LEASE} "
    f"WHERE id = ? AND state IN ('failed', 'cancelled') AND {deps.PARENTS_ALLOW_RUN} "
    f"RETURNING {JOB_COLUMNS}"
)
# The application's transaction cancels a queued or waiting job (other states are unchanged).
CANCEL_QUEUED = (
    "UPDATE qj_jobs SET state = 'cancelled', finished_at = ?, why = 'cancelled' "
    "WHERE id = ? AND state IN ('queued', 'waiting')"
)
# Cancel: a queued (or waiting) job ends now; a running one (when asked) is flagged for its worker.
# Parameters: now, job id, whether to flag a running job.
CANCEL = (
    "UPDATE qj_jobs SET "
    "finished_at = CASE WHEN state IN ('queued', 'waiting') THEN CAST(? AS DOUBLE PRECISION) "
    "ELSE finished_at END, "
    "cancel_requested = cancel_requested OR state = 'running', "
    "why = CASE WHEN state IN ('queued', 'waiting') THEN 'cancelled' ELSE why END, "
    "state = CASE WHEN state IN ('queued', 'waiting') THEN 'cancelled' ELSE state END "
    "WHERE id = ? AND (state IN ('queued', 'waiting') OR (state = 'running' AND ?)) "
    f"RETURNING {JOB_COLUMNS}"
)

# Finished jobs per time bucket and end state (``{bucket}``: the dialect's integer division).


def finished_counts_statement(dialect: str) -> str:
    """Parameters: since, bucket seconds, since."""
    return render(
        "SELECT {bucket} AS bucket, state, COUNT(*) FROM qj_jobs{finished} "
        "WHERE finished_at >= ? AND state IN ('succeeded', 'failed', 'cancelled') "
        "GROUP BY bucket, state",
        dialect,
    )


#: Rows deleted per transaction by ``purge``, so enqueues keep flowing during a big purge.
PURGE_BATCH_ROWS = 1000


def purge_statement(states: int, dialect: str) -> str:
    """Delete one batch of finished jobs (not those a job still unfinished depends on),
    returning each removed row's state. Parameters:
    the cutoff, the ``states`` state names, the batch size. PostgreSQL skips rows another
    transaction holds (SQLite's writer is alone)."""
    marks = ", ".join("?" for _ in range(states))
    return render(
        "DELETE FROM qj_jobs WHERE id IN (SELECT id FROM qj_jobs "
        f"WHERE finished_at < ? AND state IN ({marks}) AND {deps.KEEP_PARENTS} "
        "LIMIT ?{skip_locked}) RETURNING state",
        dialect,
    )


def count_removed(removed: dict[JobState, int], rows: Sequence[tuple[Any, ...]]) -> int:
    """Add a purge batch's returned states to ``removed``; the batch's size."""
    for (state,) in rows:
        removed[JobState(state)] = removed.get(JobState(state), 0) + 1
    return len(rows)


#: Leases beaten (or successes finished) per statement: well under SQLite's variable limit.
LEASE_CHUNK = 400


def heartbeat_statement(leases: int, dialect: str) -> str:
    """Extend ``leases`` leases still held. Parameters: the new expiry, then each lease's job id
    and token; returns id, token and cancel_requested of each row still held."""
    pairs = ",".join(["(?, ?)"] * leases)
    return render(
        "UPDATE qj_jobs SET lease_expires_at = ? WHERE state = 'running' AND "
        f"(id, lease_token) IN (VALUES {pairs}) RETURNING id, lease_token, cancel_requested",
        dialect,
    )


def heartbeats(backend_rows: Sequence[tuple[Any, ...]], leases: Sequence[Lease]) -> list[Heartbeat]:
    """One :class:`Heartbeat` per lease, in order, from the rows :func:`heartbeat_statement`
    returned."""
    held = {(int(i), str(t)): bool(cancel) for i, t, cancel in backend_rows}
    return [
        Heartbeat(
            x.job_id,
            held=(x.job_id, x.token) in held,
            cancel_requested=held.get((x.job_id, x.token), False),
        )
        for x in leases
    ]


def progress_statement(jobs: int, dialect: str) -> str:
    """Write the latest progress of ``jobs`` running jobs, each only where its lease is still
    held. Parameters: each job's id, lease token, fraction and message."""
    rows = ", ".join(
        ["(CAST(? AS BIGINT), ?, CAST(? AS DOUBLE PRECISION), CAST(? AS TEXT))"] * jobs
    )
    return render(
        f"WITH reported (id, token, fraction, message) AS (VALUES {rows}) "
        "UPDATE qj_jobs SET progress = reported.fraction, progress_message = reported.message "
        "FROM reported WHERE qj_jobs.id = reported.id AND qj_jobs.lease_token = reported.token "
        "AND qj_jobs.state = 'running'",
        dialect,
    )


def progress_params(reports: Sequence[tuple[Lease, Progress]]) -> list[Any]:
    """The parameters of :func:`progress_statement` for ``reports``."""
    return [v for lease, p in reports for v in (lease.job_id, lease.token, p.fraction, p.message)]


def finish_in(
    tx: BackendTransaction, o: Outcome, now: float, dialect: str, offset: float = 0.0
) -> bool:
    """Record one outcome (and the progress it carries) with ``tx``'s statements; ``False``
    when its lease is no longer held (nothing written)."""
    if o.progress is not None:
        tx.execute(progress_statement(1, dialect), progress_params([(o.lease, o.progress)]))
    statement, params = finish_statement(o, now, dialect, offset)
    return tx.execute(statement, params) == 1


def outcome_progress(outcomes: Sequence[Outcome]) -> list[tuple[Lease, Progress]]:
    """The progress the ``outcomes`` carry (reported since the last write), to write first."""
    return [(o.lease, o.progress) for o in outcomes if o.progress is not None]
