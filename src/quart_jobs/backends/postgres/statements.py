"""Every statement the PostgreSQL backend runs: the shared ones rendered for PostgreSQL
(:func:`~..shared_sql.dialect.render`), then PostgreSQL's own (``%s`` placeholders), built by
pure functions (no I/O here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..rows import CANDIDATE_COLUMNS, CLAIMED_COLUMNS, JOB_COLUMNS
from ..shared_sql import deps, fair, jobs, operator, pauses, rate, workers
from ..shared_sql.dialect import POSTGRESQL, render

# --- shared, rendered ---------------------------------------------------------------------------

RECOVER_EXPIRED = render(jobs.RECOVER_EXPIRED, POSTGRESQL)
STATS_BY_STATE = render(jobs.STATS_BY_STATE, POSTGRESQL)
STATS_OLDEST = render(jobs.STATS_OLDEST, POSTGRESQL)
STATS_BY_QUEUE = render(jobs.STATS_BY_QUEUE, POSTGRESQL)
NEXT_RUN_AT = render(jobs.NEXT_RUN_AT, POSTGRESQL)
RETRY = render(jobs.RETRY, POSTGRESQL)
CANCEL = render(jobs.CANCEL, POSTGRESQL)
#: The application's transaction cancels a queued job (other states are unchanged).
CANCEL_QUEUED = render(jobs.CANCEL_QUEUED, POSTGRESQL)
FINISHED_COUNTS = jobs.finished_counts_statement(POSTGRESQL)
TIERS = render(fair.TIERS, POSTGRESQL)
RATED_KEYS = render(rate.RATED_KEYS, POSTGRESQL)
#: The first ready jobs of one open rate key, locked (``FOR UPDATE SKIP LOCKED``).
RATED_HEADS = render(rate.RATED_HEADS, POSTGRESQL)
SAVE_KEY = render(rate.SAVE_KEY, POSTGRESQL)
CLAIM_TIERS = render(fair.CLAIM_TIERS, POSTGRESQL)
SAVE_OWNER = render(fair.SAVE_OWNER, POSTGRESQL)
SAVE_TIER = render(fair.SAVE_TIER, POSTGRESQL)
ENSURE_TIER = render(fair.ENSURE_TIER, POSTGRESQL)
QUEUED_TASKS = render(fair.QUEUED_TASKS, POSTGRESQL)
RUNNING_KEYS = render(fair.RUNNING_KEYS, POSTGRESQL)
READY_TASKS = render(fair.READY_TASKS, POSTGRESQL)
FORGET_IDLE_OWNERS = render(fair.FORGET_IDLE_OWNERS, POSTGRESQL)
#: The due jobs to tag, locked (``FOR UPDATE SKIP LOCKED``).
DUE = render(fair.DUE, POSTGRESQL)
QUEUED_GAUGES = render(operator.QUEUED_GAUGES, POSTGRESQL)
STARTED_WAITS = render(operator.STARTED_WAITS, POSTGRESQL)
LONGEST_WAITING_OWNERS = render(operator.LONGEST_WAITING_OWNERS, POSTGRESQL)
RUNNING_GAUGES = render(operator.RUNNING_GAUGES, POSTGRESQL)
OPS = operator.statements(POSTGRESQL)
LIVE = workers.statements(POSTGRESQL)
READY = workers.ready_statements(POSTGRESQL)
PAUSE = render(pauses.PAUSE, POSTGRESQL)
PAUSED = render(pauses.PAUSED, POSTGRESQL)

PARENTS = render(deps.PARENTS, POSTGRESQL)
CHILDREN = render(deps.CHILDREN, POSTGRESQL)

# --- PostgreSQL's own ---------------------------------------------------------------------------

NOTIFY = "SELECT pg_notify(%s, %s)"
#: The server's clock, read as late in the statement as possible.
SERVER_TIME = "SELECT extract(epoch FROM clock_timestamp())::double precision"
ENQUEUED_AT = "SELECT id, enqueued_at FROM qj_jobs WHERE id = ANY(%s)"
LOCK_LIMITS = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"
QUEUED_TOTAL = "SELECT COUNT(*) FROM qj_jobs WHERE state = 'queued'"
QUEUED_BY_OWNER = (
    "SELECT owner, COUNT(*) FROM qj_jobs WHERE state = 'queued' AND owner = ANY(%s) GROUP BY owner"
)
KEYS_KNOWN = "SELECT key FROM qj_jobs WHERE key = ANY(%s)"


# Enqueues with limits lock (LIMITS_LOCK, hashtext(schema)) while they count and insert.
LIMITS_LOCK = int.from_bytes(b"qjlm", "big")


J_CLAIMED = ", ".join(f"j.{column.strip()}" for column in CLAIMED_COLUMNS.split(","))
SELECT = f"SELECT {JOB_COLUMNS} FROM qj_jobs"
# One statement for a whole batch, in the caller's transaction or on its own (autocommit: one
# round trip, one commit). Rows are inserted in ``ord`` order, so their identities ascend in the
# callers' order (FIFO); a duplicate key is skipped, its first row kept. A job ready now is
# tagged (see :mod:`quart_jobs.fairness`): the owner's row is upserted, its next tag moved past
# the owner's n jobs of the batch in one update (``max(vtime, next) + n``; the row lock of the
# upsert serializes concurrent enqueues of one owner), the k-th of them tagged
# ``max(vtime, next) + k``. Rows whose key is already stored take no tag. The tier row is
# created when missing (claims look tiers up there). How the workers are woken: below.
# Jobs without an owner are one owner for fairness, but their next tag is not one row: each
# connection tags them through its own stripe of ``qj_fair_ownerless`` (the backend's process
# id modulo :data:`OWNERLESS_STRIPES`), so the enqueues of several processes do not wait for one
# another's commit on a row lock. Their next tag is the greatest of the tier's virtual time,
# every stripe's and the owner row's (``''``, which the tagging of due jobs keeps): an enqueue
# that follows another's commit is tagged after it (FIFO), and enqueues at the same moment
# from different processes may share a round (ties go by id).
OWNERLESS_STRIPES = 64
_STRIPE = f"pg_backend_pid() %% {OWNERLESS_STRIPES}"
_OWNERLESS_NEXT = (
    "greatest({t}.vtime, coalesce((SELECT max(s.next_tag) FROM qj_fair_ownerless AS s "
    "WHERE s.queue = {t}.queue AND s.priority = {t}.priority), 0), "
    "coalesce((SELECT w.next_tag FROM qj_fair_owners AS w WHERE w.queue = {t}.queue "
    "AND w.priority = {t}.priority AND w.owner = ''), 0))"
)
_INSERT = (
    "WITH new AS (SELECT n.*, n.run_at <= n.enqueued_at AS ready, "
    "row_number() OVER (PARTITION BY n.key ORDER BY n.ord) AS key_rank "
    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::integer[], "
    "%s::integer[], %s::double precision[], %s::double precision[], %s::text[], %s::text[], "
    "%s::double precision[], %s::text[], %s::text[], %s::integer[], %s::text[], %s::integer[], "
    "%s::double precision[], %s::text[]) "
    "WITH ORDINALITY AS n (task, args, kwargs, priority, max_attempts, enqueued_at, run_at, "
    "owner, key, timeout, queue, concurrency_key, concurrency_limit, rate_key, rate_limit, "
    "rate_period, trace_context, ord)), "
    "fresh AS (SELECT new.ord, new.queue, new.priority, coalesce(new.owner, '') AS okey, "
    "(row_number() OVER (PARTITION BY new.queue, new.priority, coalesce(new.owner, '') "
    "ORDER BY new.ord) - 1)::double precision AS k FROM new WHERE new.ready AND "
    "(new.key IS NULL OR (new.key_rank = 1 AND NOT EXISTS "
    "(SELECT 1 FROM qj_jobs AS j WHERE j.key = new.key)))), "
    "counts AS (SELECT f.queue, f.priority, f.okey, count(*)::double precision AS n, "
    "coalesce(min(t.vtime), 0) AS vtime, bool_and(t.queue IS NULL) AS no_tier "
    "FROM fresh AS f LEFT JOIN qj_fair_tiers AS t "
    "ON t.queue = f.queue AND t.priority = f.priority GROUP BY f.queue, f.priority, f.okey), "
    "owned AS (INSERT INTO qj_fair_owners AS o (queue, priority, owner, next_tag) "
    "SELECT c.queue, c.priority, c.okey, c.vtime + c.n FROM counts AS c WHERE c.okey <> '' "
    "ORDER BY c.queue, c.priority, c.okey "
    "ON CONFLICT (queue, priority, owner) DO UPDATE SET next_tag = greatest(excluded.next_tag, "
    "o.next_tag + (SELECT c.n FROM counts AS c WHERE c.queue = excluded.queue "
    "AND c.priority = excluded.priority AND c.okey = excluded.owner)) "
    "RETURNING o.queue, o.priority, o.owner, o.next_tag), "
    "ownerless AS (INSERT INTO qj_fair_ownerless AS o (queue, priority, stripe, next_tag) "
    f"SELECT c.queue, c.priority, {_STRIPE}, {_OWNERLESS_NEXT.format(t='c')} + c.n "
    "FROM counts AS c WHERE c.okey = '' ORDER BY c.queue, c.priority "
    "ON CONFLICT (queue, priority, stripe) DO UPDATE SET next_tag = greatest(excluded.next_tag, "
    "o.next_tag + (SELECT c.n FROM counts AS c WHERE c.queue = excluded.queue "
    "AND c.priority = excluded.priority AND c.okey = '')) "
    "RETURNING o.queue, o.priority, ''::text AS owner, o.next_tag), "
    "owners AS (SELECT * FROM owned UNION ALL SELECT * FROM ownerless), "
    "tiers AS (INSERT INTO qj_fair_tiers (queue, priority) "
    "SELECT DISTINCT c.queue, c.priority FROM counts AS c WHERE c.no_tier "
    "ON CONFLICT (queue, priority) DO NOTHING), "
    "ins AS (INSERT INTO qj_jobs (task, args, kwargs, priority, state, max_attempts, "
    "enqueued_at, run_at, owner, key, timeout, queue, concurrency_key, concurrency_limit, "
    "rate_key, rate_limit, rate_period, trace_context, tag) "
    "SELECT new.task, new.args, new.kwargs, new.priority, 'queued', new.max_attempts, "
    "new.enqueued_at, new.run_at, new.owner, new.key, new.timeout, new.queue, "
    "new.concurrency_key, new.concurrency_limit, new.rate_key, new.rate_limit, "
    "new.rate_period, new.trace_context, o.next_tag - c.n + f.k FROM new "
    "LEFT JOIN fresh AS f ON f.ord = new.ord "
    "LEFT JOIN counts AS c ON c.queue = f.queue AND c.priority = f.priority AND c.okey = f.okey "
    "LEFT JOIN owners AS o ON o.queue = f.queue AND o.priority = f.priority "
    "AND o.owner = f.okey ORDER BY new.ord "
    f"ON CONFLICT DO NOTHING RETURNING {JOB_COLUMNS})"
)
# :data:`INSERT` for one job, with scalar parameters (:func:`insert_one`): the same steps
# without the arrays, window functions and joins a batch needs. One producer awaiting each
# enqueue sends only these; measured per statement on the bench machine: server CPU 300 us
# against 553 us for :data:`INSERT` with one row, client CPU 115 us against 300 us.
_INSERT_ONE = (
    "WITH new AS (SELECT %s::text AS task, %s::text AS args, %s::text AS kwargs, "
    "%s::integer AS priority, %s::integer AS max_attempts, %s::double precision AS enqueued_at, "
    "%s::double precision AS run_at, %s::text AS owner, %s::text AS key, "
    "%s::double precision AS timeout, %s::text AS queue, %s::text AS concurrency_key, "
    "%s::integer AS concurrency_limit, %s::text AS rate_key, %s::integer AS rate_limit, "
    "%s::double precision AS rate_period, %s::text AS trace_context), "
    "fresh AS (SELECT new.queue, new.priority, coalesce(new.owner, '') AS okey, "
    "coalesce(t.vtime, 0) AS vtime, t.queue IS NULL AS no_tier FROM new "
    "LEFT JOIN qj_fair_tiers AS t ON t.queue = new.queue AND t.priority = new.priority "
    "WHERE new.run_at <= new.enqueued_at AND (new.key IS NULL OR NOT EXISTS "
    "(SELECT 1 FROM qj_jobs AS j WHERE j.key = new.key))), "
    "owned AS (INSERT INTO qj_fair_owners AS o (queue, priority, owner, next_tag) "
    "SELECT f.queue, f.priority, f.okey, f.vtime + 1 FROM fresh AS f WHERE f.okey <> '' "
    "ON CONFLICT (queue, priority, owner) DO UPDATE SET "
    "next_tag = greatest(excluded.next_tag, o.next_tag + 1) RETURNING o.next_tag), "
    "ownerless AS (INSERT INTO qj_fair_ownerless AS o (queue, priority, stripe, next_tag) "
    f"SELECT f.queue, f.priority, {_STRIPE}, {_OWNERLESS_NEXT.format(t='f')} + 1 "
    "FROM fresh AS f WHERE f.okey = '' "
    "ON CONFLICT (queue, priority, stripe) DO UPDATE SET "
    "next_tag = greatest(excluded.next_tag, o.next_tag + 1) RETURNING o.next_tag), "
    "owners AS (SELECT next_tag FROM owned UNION ALL SELECT next_tag FROM ownerless), "
    "tiers AS (INSERT INTO qj_fair_tiers (queue, priority) "
    "SELECT f.queue, f.priority FROM fresh AS f WHERE f.no_tier "
    "ON CONFLICT (queue, priority) DO NOTHING), "
    "ins AS (INSERT INTO qj_jobs (task, args, kwargs, priority, state, max_attempts, "
    "enqueued_at, run_at, owner, key, timeout, queue, concurrency_key, concurrency_limit, "
    "rate_key, rate_limit, rate_period, trace_context, tag) "
    "SELECT new.task, new.args, new.kwargs, new.priority, 'queued', new.max_attempts, "
    "new.enqueued_at, new.run_at, new.owner, new.key, new.timeout, new.queue, "
    "new.concurrency_key, new.concurrency_limit, new.rate_key, new.rate_limit, "
    "new.rate_period, new.trace_context, (SELECT o.next_tag - 1 FROM owners AS o) FROM new "
    f"ON CONFLICT DO NOTHING RETURNING {JOB_COLUMNS})"
)
# Each insert comes in two forms. In the application's own transaction (``tx.enqueue``) the
# statement NOTIFYs the workers, once, when a row was inserted: delivered when that transaction
# commits, whenever the application commits it. The group commit's own enqueues take the
# ``_QUIET`` form and wake the workers with :data:`WAKE` after their COMMIT (see there).
_WOKEN = (
    ", woken AS (SELECT pg_notify(%s, %s) WHERE EXISTS (SELECT 1 FROM ins)) "
    "SELECT ins.* FROM ins, (SELECT count(*) FROM woken) AS w"
)
INSERT = _INSERT + _WOKEN
INSERT_ONE = _INSERT_ONE + _WOKEN
INSERT_QUIET = _INSERT + " SELECT * FROM ins"
INSERT_ONE_QUIET = _INSERT_ONE + " SELECT * FROM ins"
# Wake-ups sent after a durable transaction committed, in a transaction of their own that waits
# for no WAL flush. PostgreSQL holds one lock for the whole cluster from a notifying commit's
# start to its end, WAL flush included, so a NOTIFY in the job's own transaction makes the
# durable commits of every process that notifies run one at a time. A wake-up is a hint (the
# workers' polling covers a lost one), so it is sent after the job is durable, in the
# background (:class:`~.connections.Waker`): ``synchronous_commit`` is off for that
# transaction only.
# Parameters: the channels and the payloads (arrays, one notification per element).
WAKE = (
    "SELECT set_config('synchronous_commit', 'off', true), pg_notify(c, p) "
    "FROM unnest(%s::text[], %s::text[]) AS n(c, p)"
)
# The fair claim's PostgreSQL-only parts: row locks, and every tier range in one statement.
SET_TAGS = (
    "UPDATE qj_jobs AS j SET tag = t.tag FROM unnest(%s::bigint[], %s::double precision[]) "
    "AS t(id, tag) WHERE j.id = t.id"
)
# The claimable tiers (queues not paused) of the claimed queues, locked in one order.
LOCK_TIERS = (
    CLAIM_TIERS
    + " AND (%s::text[] IS NULL OR queue = ANY(%s)) ORDER BY queue, priority FOR UPDATE OF t"
)
# Resuming a queue wakes the workers as an enqueue does, in the same transaction.
RESUME = (
    f"WITH gone AS ({render(pauses.RESUME, POSTGRESQL)} RETURNING queue) "
    "SELECT pg_notify(%s, %s) FROM gone"
)
# A claim that may start jobs of rate keys creates their rows (an empty log) and locks them,
# in key order, after the tier rows and before the concurrency keys' advisory locks: the row
# lock makes the read, the budget and the write of a key's log one step across processes.
ENSURE_RATE_KEYS = (
    "INSERT INTO qj_rate_keys (key) SELECT k FROM unnest(%s::text[]) AS k ORDER BY k "
    "ON CONFLICT DO NOTHING"
)
LOCK_RATE_KEYS = (
    "SELECT key, log, open_at, period FROM qj_rate_keys WHERE key = ANY(%s) ORDER BY key FOR UPDATE"
)
# Owner rows are created (next tag 0: no effect) then locked, in one order: no deadlock.
ADD_OWNERS = (
    "INSERT INTO qj_fair_owners (queue, priority, owner, next_tag) "
    "SELECT q, p, o, 0 FROM unnest(%s::text[], %s::integer[], %s::text[]) AS k(q, p, o) "
    "ORDER BY q, p, o ON CONFLICT DO NOTHING"
)
# The next tag of jobs without an owner (``''``) is also the greatest of the stripes'.
LOCK_OWNERS = (
    "SELECT f.queue, f.priority, f.owner, CASE WHEN f.owner = '' THEN greatest(f.next_tag, "
    "coalesce((SELECT max(s.next_tag) FROM qj_fair_ownerless AS s WHERE s.queue = f.queue "
    "AND s.priority = f.priority), 0)) ELSE f.next_tag END FROM qj_fair_owners AS f "
    "JOIN unnest(%s::text[], %s::integer[], %s::text[]) AS k(q, p, o) "
    "ON f.queue = k.q AND f.priority = k.p AND f.owner = k.o "
    "ORDER BY f.queue, f.priority, f.owner FOR UPDATE OF f"
)
HEADS = (
    f"SELECT c.* FROM unnest(%s::text[], %s::integer[], %s::text[]) AS r(queue, priority, task) "
    f"CROSS JOIN LATERAL (SELECT {CANDIDATE_COLUMNS} FROM qj_jobs AS j WHERE j.state = 'queued' "
    "AND j.tag IS NOT NULL AND j.rate_key IS NULL AND j.queue = r.queue "
    "AND j.priority = r.priority AND j.task = r.task "
    "ORDER BY j.tag, j.id LIMIT %s FOR UPDATE SKIP LOCKED) AS c"
)
# Outcomes that end their jobs (shared FINISH_END), many in one statement; returns the ids
# whose lease was still held. Parameters: now, then ids, tokens, states, results, errors,
# tracebacks.
FINISH_ENDS = (
    "UPDATE qj_jobs AS j SET state = v.state, finished_at = %s, result = v.result, "
    "error = v.error, traceback = v.traceback, why = v.why, lease_token = NULL, "
    "lease_expires_at = NULL FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::text[]) AS v(id, token, state, result, error, traceback, why) "
    "WHERE j.id = v.id AND j.lease_token = v.token AND j.state = 'running' RETURNING j.id"
)
# HEADS over every claimable tier of the claimed queues (the rows LOCK_TIERS locks) and the
# tasks given: sent in the same pipeline as LOCK_TIERS, so the claim needs no round trip in between.
HEADS_OF_TIERS = (
    "SELECT c.* FROM (SELECT t.queue, t.priority FROM qj_fair_tiers AS t "
    f"WHERE {pauses.NOT_PAUSED} AND (%s::text[] IS NULL OR t.queue = ANY(%s))) AS r "
    "CROSS JOIN unnest(%s::text[]) AS k(task) "
    f"CROSS JOIN LATERAL (SELECT {CANDIDATE_COLUMNS} FROM qj_jobs AS j WHERE j.state = 'queued' "
    "AND j.tag IS NOT NULL AND j.rate_key IS NULL AND j.queue = r.queue "
    "AND j.priority = r.priority AND j.task = k.task "
    "ORDER BY j.tag, j.id LIMIT %s FOR UPDATE SKIP LOCKED) AS c"
)
# Claims that may start jobs of a concurrency key hold its lock until they commit.
LOCK_KEYS = (
    "SELECT pg_advisory_xact_lock(%s, hashtext(k)) FROM "
    "(SELECT k FROM unnest(%s::text[]) AS k ORDER BY k) AS keys"
)
CONCURRENCY_LOCK = int.from_bytes(b"qjck", "big")
CLAIM = (
    "UPDATE qj_jobs AS j SET state = 'running', attempts = j.attempts + 1, started_at = %s, "
    "worker = %s, lease_token = c.token, lease_expires_at = %s, cancel_requested = false "
    "FROM unnest(%s::bigint[], %s::text[]) AS c(id, token) "
    f"WHERE j.id = c.id AND j.state = 'queued' RETURNING {J_CLAIMED}"
)


def insert_one(row: tuple[Any, ...], *wake: str) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_ONE` (``wake``: the NOTIFY's channel and payload) or of
    :data:`INSERT_ONE_QUIET` (no ``wake``)."""
    return (*row, *wake)


def insert_arrays(rows: Sequence[tuple[Any, ...]], *wake: str) -> list[Any]:
    """The parameters of :data:`INSERT` (``wake``: the NOTIFY's channel and payload) or of
    :data:`INSERT_QUIET` (no ``wake``): one array per column."""
    return [*(list(column) for column in zip(*rows, strict=True)), *wake]
