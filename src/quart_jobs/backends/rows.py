"""Rows and records: the columns a claim and a read select, and the records built from them
(shared by every backend, so a job reads the same from each)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple, cast

from ..models import Job, JobState, NewJob, Stats, Why
from ..rate import RateLimit


class Candidate(NamedTuple):
    """A ready, tagged, queued job as a claim reads it from its tier's index range."""

    id: int
    queue: str
    priority: int
    tag: float
    concurrency_key: str | None
    concurrency_limit: int | None
    #: Read only for jobs with a rate key (from their own index): ``None`` for the others.
    rate_key: str | None = None
    rate_limit: int | None = None
    rate_period: float | None = None


#: The columns of :class:`Candidate` a job without a rate key needs, in order.
CANDIDATE_COLUMNS = "id, queue, priority, tag, concurrency_key, concurrency_limit"
#: Every column of :class:`Candidate`, for jobs with a rate key.
RATED_CANDIDATE_COLUMNS = f"{CANDIDATE_COLUMNS}, rate_key, rate_limit, rate_period"


# Column order shared by the SQL backends' SELECTs and row conversion.
JOB_COLUMNS = (
    "id, task, args, kwargs, priority, state, attempts, max_attempts, enqueued_at, run_at, "
    "owner, key, timeout, started_at, finished_at, worker, lease_token, lease_expires_at, "
    "cancel_requested, result, error, traceback, queue, concurrency_key, concurrency_limit, "
    "rate_key, rate_limit, rate_period, why, progress, progress_message, trace_context"
)


def job_from_row(row: Sequence[Any]) -> Job:
    """A :class:`Job` from a row in :data:`JOB_COLUMNS` order (args, kwargs, result as JSON)."""
    # One Job per claimed row: the worker's hot path (see :data:`_Unfrozen`); jobs without
    # arguments, the common case, skip the JSON decoder.
    args, kwargs, result, limit, why = row[2], row[3], row[19], row[26], row[28]
    return _job(
        _Unfrozen(
            row[0],
            row[1],
            () if args == "[]" else tuple(json.loads(args)),
            {} if kwargs == "{}" else json.loads(kwargs),
            row[4],
            _STATES[row[5]],
            row[6],
            row[7],
            row[8],
            row[9],
            row[10],
            row[11],
            row[12],
            row[13],
            row[14],
            row[15],
            row[16],
            row[17],
            bool(row[18]),
            None if result is None else json.loads(result),
            row[20],
            row[21],
            row[22],
            row[23],
            row[24],
            row[25],
            None if limit is None else RateLimit(int(limit), float(row[27])),
            None if why is None else _WHYS.get(why),
            row[29],
            row[30],
            row[31],
        )
    )


#: The columns a claim returns: those it does not set itself (it sets the state, the start, the
#: worker and the lease's expiry; a queued job has no end, result nor progress: see
#: :func:`job_from_claimed`). Fewer columns than :data:`JOB_COLUMNS`: less to read per job.
CLAIMED_COLUMNS = (
    "id, task, args, kwargs, priority, attempts, max_attempts, enqueued_at, run_at, owner, key, "
    "timeout, lease_token, error, traceback, queue, concurrency_key, concurrency_limit, "
    "rate_key, rate_limit, rate_period, why, trace_context"
)


def job_from_claimed(
    row: Sequence[Any], started_at: float, worker: str, lease_expires_at: float
) -> Job:
    """The :class:`Job` a claim started, from a row in :data:`CLAIMED_COLUMNS` order and what
    the claim set. A job is claimed from ``queued``, where it has no ``finished_at``, result nor
    progress (every write that queues a job again clears them; a contract test reads each
    claimed job back from the store to compare)."""
    args, kwargs, limit, why = row[2], row[3], row[19], row[21]
    return _job(
        _Unfrozen(
            row[0],
            row[1],
            () if args == "[]" else tuple(json.loads(args)),
            {} if kwargs == "{}" else json.loads(kwargs),
            row[4],
            JobState.RUNNING,
            row[5],
            row[6],
            row[7],
            row[8],
            row[9],
            row[10],
            row[11],
            started_at,
            None,
            worker,
            row[12],
            lease_expires_at,
            False,
            None,
            row[13],
            row[14],
            row[15],
            row[16],
            row[17],
            row[18],
            None if limit is None else RateLimit(int(limit), float(row[20])),
            None if why is None else _WHYS.get(why),
            None,
            None,
            row[22],
        )
    )


#: A plain (not frozen) twin of :class:`Job`, with the same slots in the same order: a row fills
#: one with plain attribute stores, then :func:`_job` makes it a ``Job``, frozen like any other
#: (the layouts are the same, so ``__class__`` may change). A frozen dataclass's own
#: ``__init__`` goes through ``object.__setattr__`` for each of the 31 fields: five times
#: slower, on the path of every job a worker claims. ``tests/unit/test_rows.py`` checks the twin.
_Unfrozen: Any = dataclasses.make_dataclass(
    "_Unfrozen",
    [(f.name, Any) for f in dataclasses.fields(Job)],
    slots=True,
    eq=False,
    repr=False,
    match_args=False,
)


def _job(filled: Any) -> Job:
    filled.__class__ = Job
    return cast(Job, filled)


_STATES = {state.value: state for state in JobState}
_WHYS = {why.value: why for why in Why}


def stats_from_rows(
    by_state: Iterable[Sequence[Any]],
    oldest: Iterable[Sequence[Any]],
    by_queue: Iterable[Sequence[Any]],
) -> Stats:
    """:class:`Stats` from the rows of the shared stats statements (:mod:`.shared_sql.jobs`)."""
    return Stats(
        counts={(JobState(s), int(p)): int(n) for s, p, n in by_state},
        oldest_queued={int(p): float(t) for p, t in oldest},
        queues={(str(q), JobState(s)): int(n) for q, s, n in by_queue},
    )


def purge_states(states: Collection[JobState]) -> list[str]:
    """The state names a purge may delete, refusing any state that is not an end state."""
    chosen = [JobState(s) for s in states]
    live = [s.value for s in chosen if not s.finished]
    if live:
        raise ValueError(f"only finished jobs can be purged, not {', '.join(live)} ones")
    return sorted(s.value for s in chosen)


def new_job_record(new: NewJob, job_id: int, enqueued_at: float, run_at: float) -> Job:
    """The :class:`Job` a backend stored for ``new``: what reading it back returns (arguments
    that JSON would change, such as tuples, go through it: the record shares no mutable value
    with the caller)."""
    return Job(
        id=job_id,
        task=new.task,
        args=tuple(json.loads(json.dumps(list(new.args)))) if _needs_copy(new.args) else new.args,
        kwargs=(
            json.loads(json.dumps(dict(new.kwargs)))
            if _needs_copy(tuple(new.kwargs.values()))
            else dict(new.kwargs)
        ),
        priority=new.priority,
        state=JobState.QUEUED,
        attempts=0,
        max_attempts=new.max_attempts,
        enqueued_at=enqueued_at,
        run_at=run_at,
        owner=new.owner,
        key=new.key,
        timeout=new.timeout,
        queue=new.queue,
        concurrency_key=new.concurrency_key,
        concurrency_limit=new.concurrency_limit,
        rate_key=new.rate_key,
        rate_limit=new.rate_limit,
        trace_context=new.trace_context,
    )


def _needs_copy(args: tuple[Any, ...]) -> bool:
    """Whether JSON would change ``args`` (tuples become lists) or they hold a mutable value:
    plain scalars are kept as is."""
    return not all(a is None or isinstance(a, str | int | float | bool) for a in args)
