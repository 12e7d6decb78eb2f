"""Dependencies between jobs, the SQL both backends share: the edge table ``qj_job_deps``, the
resolution run by a trigger in the transaction that ends a parent, and the enqueue of a job
``after`` others (:func:`enqueue_after`, on an open :class:`~..base.BackendTransaction`).

An edge always points from an older job to a newer one (``CHECK (parent_id < child_id)``): a
job can only name jobs that exist already, so no cycle can ever be stored.

Resolution happens where a parent's end is written, whichever statement writes it (a finish,
a batch of finishes, a lease expiry, a cancel, the cascade itself): a trigger fires on the
parent's row when it enters an end state and has dependants (``dependants > 0``: a job without
dependants never runs it). It cancels the waiting children that needed the parent to succeed
(those cancels fire the trigger again: the cascade is transitive), moves the others one step
nearer to ``queued`` (the last step makes them ``queued``, ready now, untagged: the next claim
tags and starts them like any job that became due), and marks the edges resolved so that a
parent that ends again (after an operator's retry) never counts twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...errors import UnknownDependency
from ...models import Dependencies, EnqueueResult, JobLink, JobState, NewJob
from ..base import BackendTransaction
from ..rows import JOB_COLUMNS, job_from_row
from .dialect import render

#: The trigger's three statements, in order (``NEW`` is the parent's row after its update).
CANCEL_CHILDREN = (
    "UPDATE qj_jobs SET state = 'cancelled', finished_at = NEW.finished_at, why = 'dependency', "
    "error = 'dependency ' || NEW.id || ' ' || NEW.state "
    "WHERE NEW.state <> 'succeeded' AND state = 'waiting' AND NOT run_always AND id IN "
    "(SELECT child_id FROM qj_job_deps WHERE parent_id = NEW.id AND NOT resolved)"
)
STEP_CHILDREN = (
    "UPDATE qj_jobs SET waiting_on = waiting_on - 1, "
    "state = CASE WHEN waiting_on = 1 THEN 'queued' ELSE state END, "
    "run_at = CASE WHEN waiting_on = 1 AND run_at < NEW.finished_at THEN NEW.finished_at "
    "ELSE run_at END "
    "WHERE state = 'waiting' AND id IN "
    "(SELECT child_id FROM qj_job_deps WHERE parent_id = NEW.id AND NOT resolved)"
)
RESOLVE_EDGES = "UPDATE qj_job_deps SET resolved = true WHERE parent_id = NEW.id AND NOT resolved"
#: When the trigger runs: a job with dependants entering an end state.
RESOLVE_WHEN = (
    "NEW.dependants > 0 AND NEW.state IN ('succeeded', 'failed', 'cancelled') "
    "AND OLD.state <> NEW.state"
)

#: The parents of jobs, read (locked on PostgreSQL) by an enqueue that names them.
PARENT_STATES = "SELECT id, state FROM qj_jobs WHERE id IN ({ids}) ORDER BY id"
#: A job that waits: the INSERT of :func:`~.jobs.insert_params`'s row plus its counters.
INSERT_WAITING = (
    "INSERT INTO qj_jobs (task, args, kwargs, priority, max_attempts, enqueued_at, run_at, "
    "owner, key, timeout, queue, concurrency_key, concurrency_limit, rate_key, rate_limit, "
    "rate_period, trace_context, state, waiting_on, parents, run_always) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?, ?) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
#: A new job whose parents all ended as it needs: ready now (the next claim tags it).
READY_NOW = (
    "UPDATE qj_jobs SET state = 'queued', run_at = CASE WHEN run_at < ? THEN ? ELSE run_at END "
    "WHERE id = ?"
)
#: A new job one of whose parents failed or was cancelled already.
CANCEL_NOW = "UPDATE qj_jobs SET state = 'cancelled', finished_at = ?, error = ? WHERE id = ?"
ADD_DEPENDANTS = "UPDATE qj_jobs SET dependants = dependants + ? WHERE id IN ({ids})"
INSERT_EDGES = "INSERT INTO qj_job_deps (child_id, parent_id, position, resolved) VALUES {rows}"

#: A job's parents in the order given (a purged one has no row: task and state NULL).
PARENTS = (
    "SELECT d.parent_id, j.task, j.state, j.result FROM qj_job_deps AS d "
    "LEFT JOIN qj_jobs AS j ON j.id = d.parent_id WHERE d.child_id = ? ORDER BY d.position"
)
#: A job's dependants, oldest first (at most ``?``).
CHILDREN = (
    "SELECT d.child_id, j.task, j.state, NULL FROM qj_job_deps AS d "
    "JOIN qj_jobs AS j ON j.id = d.child_id WHERE d.parent_id = ? ORDER BY d.child_id LIMIT ?"
)
#: Whether a job's parents let it run now (an operator's retry): each succeeded, or, for a job
#: that runs whatever happens, ended. A job without parents passes at once.
PARENTS_ALLOW_RUN = (
    "(parents = 0 OR NOT EXISTS (SELECT 1 FROM qj_job_deps AS d JOIN qj_jobs AS p "
    "ON p.id = d.parent_id WHERE d.child_id = qj_jobs.id AND (p.state IN "
    "('waiting', 'queued', 'running') OR (p.state <> 'succeeded' AND NOT qj_jobs.run_always))))"
)

#: Retention keeps a job that a job not yet finished depends on.
KEEP_PARENTS = (
    "(dependants = 0 OR NOT EXISTS (SELECT 1 FROM qj_job_deps AS d JOIN qj_jobs AS c "
    "ON c.id = d.child_id WHERE d.parent_id = qj_jobs.id "
    "AND c.state IN ('waiting', 'queued', 'running')))"
)
#: A deleted job's edges to its parents go with it (its parents may be gone already: retention
#: keeps a parent only while a dependant is unfinished).
FORGET_EDGES = "DELETE FROM qj_job_deps WHERE child_id = OLD.id"

#: Edges per INSERT (four parameters each).
EDGE_CHUNK = 200
_UNFINISHED = {JobState.WAITING.value, JobState.QUEUED.value, JobState.RUNNING.value}


def marks(n: int) -> str:
    return ", ".join("?" * n)


def enqueue_after(
    tx: BackendTransaction,
    jobs: Sequence[NewJob],
    rows: Sequence[tuple[Any, ...]],
    after: Sequence[int],
    now: float,
    *,
    run_always: bool = False,
) -> list[EnqueueResult]:
    """Insert ``jobs`` (their rows from :func:`~.jobs.insert_params`), each after every job in
    ``after`` (ids, in the order :meth:`parent_results` returns them), in ``tx``.

    Parents are read (and locked, on PostgreSQL, so that a parent ending meanwhile either
    commits first and is seen ended here, or waits and then finds the new edges). A missing
    parent raises :class:`UnknownDependency`: the caller's transaction rolls back whole. A job
    whose key exists already is returned as it is, with no new parents."""
    dialect = tx.dialect
    order = list(dict.fromkeys(after))
    ids = sorted(order)
    lock = " FOR UPDATE" if dialect == "postgresql" else ""
    states: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        statement = render(PARENT_STATES.format(ids=marks(len(chunk))), dialect) + lock
        states.update({int(i): str(s) for i, s in tx.fetchall(statement, chunk)})
    missing = [i for i in order if i not in states]
    if missing:
        raise UnknownDependency(
            f"job {missing[0]} does not exist (retention may have deleted it); nothing was enqueued"
        )
    waiting_on = sum(1 for i in order if states[i] in _UNFINISHED)
    bad = next((i for i in order if states[i] in ("failed", "cancelled") and not run_always), None)
    results: list[EnqueueResult] = []
    created: list[int] = []
    insert = render(INSERT_WAITING, dialect)
    for new, row in zip(jobs, rows, strict=True):
        inserted = tx.fetchone(insert, (*row, waiting_on, len(order), run_always))
        if inserted is None:  # its key exists: that job, as it is
            existing = tx.fetchone(
                render(f"SELECT {JOB_COLUMNS} FROM qj_jobs WHERE key = ?", dialect),
                (new.key,),
            )
            assert existing is not None
            results.append(EnqueueResult(job_from_row(existing), created=False))
            continue
        job_id = int(inserted[0])
        created.append(job_id)
        if bad is not None:
            error = f"dependency {bad} {states[bad]}"
            tx.execute(render(CANCEL_NOW, dialect), (now, error, job_id))
        elif waiting_on == 0:
            tx.execute(render(READY_NOW, dialect), (now, now, job_id))
        job = tx.get(job_id)
        assert job is not None
        results.append(EnqueueResult(job, created=True))
    if created:
        edges = [
            (child, parent, position, states[parent] not in _UNFINISHED)
            for child in created
            for position, parent in enumerate(order)
        ]
        for start in range(0, len(edges), EDGE_CHUNK):
            batch = edges[start : start + EDGE_CHUNK]
            rows_sql = ", ".join(["(?, ?, ?, ?)"] * len(batch))
            tx.execute(
                render(INSERT_EDGES.format(rows=rows_sql), dialect),
                [v for edge in batch for v in edge],
            )
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            tx.execute(
                render(ADD_DEPENDANTS.format(ids=marks(len(chunk))), dialect),
                (len(created), *chunk),
            )
    return results


def dependencies_from_rows(
    parents: Sequence[Sequence[Any]], children: Sequence[Sequence[Any]]
) -> Dependencies:
    """:class:`Dependencies` from the rows of :data:`PARENTS` and :data:`CHILDREN`."""

    def link(row: Sequence[Any]) -> JobLink:
        job_id, task, state, result = row
        return JobLink(
            int(job_id),
            task,
            None if state is None else JobState(state),
            None if result is None else json.loads(result),
        )

    return Dependencies(tuple(map(link, parents)), tuple(map(link, children)))
