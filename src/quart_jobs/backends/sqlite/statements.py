"""Every statement the SQLite backend runs: the shared ones rendered for SQLite
(:func:`~..shared_sql.dialect.render`), then SQLite's own."""

from __future__ import annotations

import functools

from ..rows import CLAIMED_COLUMNS, JOB_COLUMNS
from ..shared_sql import deps, fair, jobs, operator, pauses, rate, workers
from ..shared_sql.dialect import SQLITE, render

# --- shared, rendered ---------------------------------------------------------------------------

RECOVER_EXPIRED = render(jobs.RECOVER_EXPIRED, SQLITE)
STATS_BY_STATE = render(jobs.STATS_BY_STATE, SQLITE)
STATS_OLDEST = render(jobs.STATS_OLDEST, SQLITE)
STATS_BY_QUEUE = render(jobs.STATS_BY_QUEUE, SQLITE)
NEXT_RUN_AT = render(jobs.NEXT_RUN_AT, SQLITE)
RETRY = render(jobs.RETRY, SQLITE)
CANCEL = render(jobs.CANCEL, SQLITE)
CANCEL_QUEUED = render(jobs.CANCEL_QUEUED, SQLITE)
FINISHED_COUNTS = jobs.finished_counts_statement(SQLITE)
TIERS = render(fair.TIERS, SQLITE)
CLAIM_TIERS = render(fair.CLAIM_TIERS, SQLITE)
RATED_KEYS = render(rate.RATED_KEYS, SQLITE)
RATED_HEADS = render(rate.RATED_HEADS, SQLITE)
KEY_STATE = render(rate.KEY_STATE, SQLITE)
SAVE_KEY = render(rate.SAVE_KEY, SQLITE)
OWNER_NEXT = render(fair.OWNER_NEXT, SQLITE)
SAVE_OWNER = render(fair.SAVE_OWNER, SQLITE)
SAVE_TIER = render(fair.SAVE_TIER, SQLITE)
ENSURE_TIER = render(fair.ENSURE_TIER, SQLITE)
SET_TAG = render(fair.SET_TAG, SQLITE)
QUEUED_TASKS = render(fair.QUEUED_TASKS, SQLITE)
RUNNING_KEYS = render(fair.RUNNING_KEYS, SQLITE)
HEADS = render(fair.HEADS, SQLITE)
DUE = render(fair.DUE, SQLITE)
READY_TASKS = render(fair.READY_TASKS, SQLITE)
FORGET_IDLE_OWNERS = render(fair.FORGET_IDLE_OWNERS, SQLITE)
QUEUED_GAUGES = render(operator.QUEUED_GAUGES, SQLITE)
STARTED_WAITS = render(operator.STARTED_WAITS, SQLITE)
LONGEST_WAITING_OWNERS = render(operator.LONGEST_WAITING_OWNERS, SQLITE)
RUNNING_GAUGES = render(operator.RUNNING_GAUGES, SQLITE)
OPS = operator.statements(SQLITE)
LIVE = workers.statements(SQLITE)
READY = workers.ready_statements(SQLITE)
PAUSE = render(pauses.PAUSE, SQLITE)
RESUME = render(pauses.RESUME, SQLITE)
PAUSED = render(pauses.PAUSED, SQLITE)

PARENTS = render(deps.PARENTS, SQLITE)
CHILDREN = render(deps.CHILDREN, SQLITE)

# --- SQLite's own -------------------------------------------------------------------------------

SELECT = f"SELECT {JOB_COLUMNS} FROM qj_jobs"

#: The latest time the database shows as already used, at open: the newest job's enqueue and
#: the latest finish (both cheap: the primary key and ``qj_jobs_finished``).
HIGH_WATER = (
    "SELECT MAX(t) FROM ("
    "SELECT enqueued_at AS t FROM qj_jobs WHERE id = (SELECT MAX(id) FROM qj_jobs) "
    "UNION ALL SELECT MAX(finished_at) FROM qj_jobs WHERE finished_at IS NOT NULL)"
)

# Queued jobs in total and of one owner, from the trigger-kept counters.
QUEUED_TOTAL = "SELECT n FROM qj_queued_total WHERE id = 1"
QUEUED_OF_OWNER = "SELECT n FROM qj_queued_by_owner WHERE owner = ?"

_INSERT_COLUMNS = (
    "INSERT INTO qj_jobs (task, args, kwargs, priority, state, max_attempts, enqueued_at, "
    "run_at, owner, key, timeout, queue, concurrency_key, concurrency_limit, rate_key, "
    "rate_limit, rate_period, trace_context, tag) VALUES "
)
_INSERT_ROW = "(?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#: One job (a key that exists inserts nothing).
INSERT = f"{_INSERT_COLUMNS}{_INSERT_ROW} ON CONFLICT DO NOTHING RETURNING id"
#: Rows per multi-row INSERT (19 parameters each).
INSERT_CHUNK = 500


@functools.lru_cache(maxsize=64)
def insert_values(n: int) -> str:
    """``n`` jobs without a key in one statement."""
    return _INSERT_COLUMNS + ", ".join([_INSERT_ROW] * n) + " RETURNING id"


def claim_statement(n: int) -> str:
    """Start ``n`` queued jobs. Parameters: now, worker, the claim's token, the lease's expiry,
    the ``n`` ids."""
    return (
        "UPDATE qj_jobs SET state = 'running', attempts = attempts + 1, started_at = ?, "
        "worker = ?, lease_token = ?, lease_expires_at = ?, cancel_requested = 0 "
        f"WHERE id IN ({','.join('?' * n)}) AND state = 'queued' "
        f"RETURNING {CLAIMED_COLUMNS}"
    )


def succeed_statement(n: int) -> str:
    """Record ``n`` successes whose leases are still held. Parameters: now, a JSON object of
    the results by job id, then each lease's job id and token; returns the ids recorded."""
    return (
        "UPDATE qj_jobs SET state = 'succeeded', finished_at = ?, error = NULL, "
        "traceback = NULL, why = NULL, lease_token = NULL, lease_expires_at = NULL, "
        "result = json_extract(?, '$.\"' || id || '\"') "
        "WHERE state = 'running' AND (id, lease_token) IN "
        f"(VALUES {','.join(['(?, ?)'] * n)}) RETURNING id"
    )


def enqueued_at_statement(n: int) -> str:
    """The enqueue times of ``n`` jobs by id."""
    return f"SELECT id, enqueued_at FROM qj_jobs WHERE id IN ({', '.join('?' * n)})"
