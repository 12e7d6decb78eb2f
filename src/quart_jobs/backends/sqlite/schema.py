"""The whole SQLite schema: every component's migration scripts, and how they are applied.

Each script moves its component from version i to i + 1; ``qj_schema`` records how many were
applied (:mod:`..shared_sql.versions`). A released script never changes: a change is a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ...errors import SchemaTooNew
from ..shared_sql import deps, versions

#: The job table, its fair-claim state and the queued-job counters (component ``quart_jobs``).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE qj_jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task TEXT NOT NULL,
        args TEXT NOT NULL,
        kwargs TEXT NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        enqueued_at REAL NOT NULL,
        run_at REAL NOT NULL,
        owner TEXT,
        key TEXT,
        timeout REAL,
        started_at REAL,
        finished_at REAL,
        worker TEXT,
        lease_token TEXT,
        lease_expires_at REAL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT,
        traceback TEXT
    );
    CREATE UNIQUE INDEX qj_jobs_key ON qj_jobs (key) WHERE key IS NOT NULL;
    CREATE INDEX qj_jobs_claim ON qj_jobs (priority, id, run_at) WHERE state = 'queued';
    CREATE INDEX qj_jobs_ready ON qj_jobs (run_at, priority) WHERE state = 'queued';
    CREATE INDEX qj_jobs_leases ON qj_jobs (lease_expires_at) WHERE state = 'running';
    CREATE INDEX qj_jobs_state ON qj_jobs (state, id);
    CREATE INDEX qj_jobs_owner ON qj_jobs (owner, id) WHERE owner IS NOT NULL;
    """,
    # Throughput over recent minutes and purges of old jobs both select by finished_at.
    """
    CREATE INDEX qj_jobs_finished ON qj_jobs (finished_at) WHERE finished_at IS NOT NULL;
    """,
    # Queued-job counters, kept by triggers in the writing transaction, so enqueue limits
    # (QueueLimits) cost two primary-key reads instead of a COUNT over the queue.
    """
    CREATE TABLE qj_queued_total (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
    CREATE TABLE qj_queued_by_owner (owner TEXT PRIMARY KEY, n INTEGER NOT NULL);
    INSERT INTO qj_queued_total (id, n) SELECT 1, COUNT(*) FROM qj_jobs WHERE state = 'queued';
    INSERT INTO qj_queued_by_owner (owner, n) SELECT owner, COUNT(*) FROM qj_jobs
        WHERE state = 'queued' AND owner IS NOT NULL GROUP BY owner;
    CREATE TRIGGER qj_queued_insert AFTER INSERT ON qj_jobs WHEN NEW.state = 'queued'
    BEGIN
        UPDATE qj_queued_total SET n = n + 1 WHERE id = 1;
        INSERT INTO qj_queued_by_owner (owner, n) SELECT NEW.owner, 1 WHERE NEW.owner IS NOT NULL
            ON CONFLICT (owner) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER qj_queued_enter AFTER UPDATE OF state ON qj_jobs
    WHEN OLD.state <> 'queued' AND NEW.state = 'queued'
    BEGIN
        UPDATE qj_queued_total SET n = n + 1 WHERE id = 1;
        INSERT INTO qj_queued_by_owner (owner, n) SELECT NEW.owner, 1 WHERE NEW.owner IS NOT NULL
            ON CONFLICT (owner) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER qj_queued_leave AFTER UPDATE OF state ON qj_jobs
    WHEN OLD.state = 'queued' AND NEW.state <> 'queued'
    BEGIN
        UPDATE qj_queued_total SET n = n - 1 WHERE id = 1;
        UPDATE qj_queued_by_owner SET n = n - 1 WHERE owner = OLD.owner;
    END;
    CREATE TRIGGER qj_queued_delete AFTER DELETE ON qj_jobs WHEN OLD.state = 'queued'
    BEGIN
        UPDATE qj_queued_total SET n = n - 1 WHERE id = 1;
        UPDATE qj_queued_by_owner SET n = n - 1 WHERE owner = OLD.owner;
    END;
    """,
    # Queues, concurrency keys and the fair claim (tags, tier clocks, owners' next tags).
    # Queued jobs of an older release have no tag: the claim tags them as it finds them due.
    """
    ALTER TABLE qj_jobs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE qj_jobs ADD COLUMN concurrency_key TEXT;
    ALTER TABLE qj_jobs ADD COLUMN concurrency_limit INTEGER;
    ALTER TABLE qj_jobs ADD COLUMN tag REAL;

    CREATE TABLE qj_fair_tiers (
        queue TEXT NOT NULL,
        priority INTEGER NOT NULL,
        vtime DOUBLE PRECISION NOT NULL DEFAULT 0,
        start DOUBLE PRECISION NOT NULL DEFAULT 0,
        finish DOUBLE PRECISION NOT NULL DEFAULT 0,
        served DOUBLE PRECISION NOT NULL DEFAULT 0,
        PRIMARY KEY (queue, priority)
    );
    CREATE TABLE qj_fair_owners (
        queue TEXT NOT NULL,
        priority INTEGER NOT NULL,
        owner TEXT NOT NULL,
        next_tag DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (queue, priority, owner)
    );
    CREATE INDEX qj_jobs_fair ON qj_jobs (queue, priority, task, tag, id, concurrency_key)
        WHERE state = 'queued' AND tag IS NOT NULL;
    CREATE INDEX qj_jobs_due ON qj_jobs (run_at, id) WHERE state = 'queued' AND tag IS NULL;
    CREATE INDEX qj_jobs_running_keys ON qj_jobs (concurrency_key)
        WHERE state = 'running' AND concurrency_key IS NOT NULL;
    """,
    # Fewer indexes per state change: the pre-fairness ``qj_jobs_claim`` (priority, id, run_at)
    # and ``qj_jobs_ready`` (run_at, priority) cost a leaf on every enqueue, claim and finish and
    # were read only by the queued gauges, ``next_run_at`` and the oldest-queued statistics; those
    # read ``qj_jobs_fair`` (ready jobs) and ``qj_jobs_due`` (jobs not yet ready) now, and
    # ``qj_jobs_due`` carries the priority so that the gauges count it without reading rows.
    """
    DROP INDEX qj_jobs_claim;
    DROP INDEX qj_jobs_ready;
    DROP INDEX qj_jobs_due;
    CREATE INDEX qj_jobs_due ON qj_jobs (run_at, id, priority)
        WHERE state = 'queued' AND tag IS NULL;
    """,  # Paused queues: a row per paused queue (resuming deletes it); claims skip their tiers.
    """
    CREATE TABLE qj_queue_pauses (
        queue TEXT PRIMARY KEY,
        paused_at DOUBLE PRECISION NOT NULL
    );
    """,
    # Rate limits. Ready jobs with a rate key leave ``qj_jobs_fair`` for ``qj_jobs_rated``, so
    # a closed key's backlog is never in front of other jobs; jobs without a key keep exactly
    # the entry they had. ``qj_rate_keys`` holds each key's log of starts (rebuilding the fair
    # index is one pass over the queued jobs, in this script's transaction).
    """
    ALTER TABLE qj_jobs ADD COLUMN rate_key TEXT;
    ALTER TABLE qj_jobs ADD COLUMN rate_limit INTEGER;
    ALTER TABLE qj_jobs ADD COLUMN rate_period REAL;
    CREATE TABLE qj_rate_keys (
        key TEXT PRIMARY KEY,
        log TEXT NOT NULL DEFAULT '[]',
        open_at DOUBLE PRECISION NOT NULL DEFAULT 0,
        period DOUBLE PRECISION NOT NULL DEFAULT 0
    );
    DROP INDEX qj_jobs_fair;
    CREATE INDEX qj_jobs_fair ON qj_jobs (queue, priority, task, tag, id, concurrency_key)
        WHERE state = 'queued' AND tag IS NOT NULL AND rate_key IS NULL;
    CREATE INDEX qj_jobs_rated ON qj_jobs (queue, priority, task, rate_key, tag, id)
        WHERE state = 'queued' AND tag IS NOT NULL AND rate_key IS NOT NULL;
    """,
    # Why a job's latest attempt ended as it did (a failure's reason, a cancel, a lost worker):
    # the values of ``quart_jobs.models.Why``.
    """
    ALTER TABLE qj_jobs ADD COLUMN why TEXT;
    """,
    # Progress a running task reports (``current_job().progress``): no index, and NULL for
    # every job that never reports, so the other writes carry nothing more.
    """
    ALTER TABLE qj_jobs ADD COLUMN progress REAL;
    ALTER TABLE qj_jobs ADD COLUMN progress_message TEXT;
    """,
    # Dependencies between jobs: a job waits (state 'waiting') until its parents end; edges
    # point from an older job to a newer one, so no cycle can be stored. Jobs without parents
    # or dependants keep zeros here and no edge rows; the trigger's WHEN rejects them at once.
    # Every write that ends a job sets finished_at, and a claim does not: the trigger is "OF
    # finished_at" so that claims, the commonest write, do not run it at all.
    f"""
    ALTER TABLE qj_jobs ADD COLUMN waiting_on INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE qj_jobs ADD COLUMN parents INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE qj_jobs ADD COLUMN dependants INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE qj_jobs ADD COLUMN run_always INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE qj_job_deps (
        child_id INTEGER NOT NULL,
        parent_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        resolved INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (child_id, parent_id),
        CHECK (parent_id < child_id)
    ) WITHOUT ROWID;
    CREATE INDEX qj_job_deps_parent ON qj_job_deps (parent_id, resolved);
    CREATE TRIGGER qj_jobs_resolve AFTER UPDATE OF finished_at ON qj_jobs
    WHEN {deps.RESOLVE_WHEN}
    BEGIN
        {deps.CANCEL_CHILDREN};
        {deps.STEP_CHILDREN};
        {deps.RESOLVE_EDGES};
    END;
    CREATE TRIGGER qj_jobs_forget_edges AFTER DELETE ON qj_jobs WHEN OLD.parents > 0
    BEGIN
        {deps.FORGET_EDGES};
    END;
    """,
    # The trace context of a job's enqueue (a JSON object of W3C trace headers), written with
    # the job when tracing is on: its attempts continue that trace. NULL otherwise.
    """
    ALTER TABLE qj_jobs ADD COLUMN trace_context TEXT;
    """,
)

#: Admin sessions, the readiness write probe and the index behind the count of jobs a full
#: concurrency key holds (component ``quart_jobs_operator``: what the operator surface reads).
OPERATOR_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE qj_admin_sessions (id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
    CREATE INDEX qj_admin_sessions_expiry ON qj_admin_sessions (expires_at);
    CREATE TABLE qj_write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL,
        pad TEXT NOT NULL);
    """,
    # Why jobs wait: the ready jobs with a concurrency key, by key, so that the jobs a full key
    # holds are a range count (entries only for keyed jobs; a job without a key has none).
    """
    CREATE INDEX qj_jobs_keyed
        ON qj_jobs (concurrency_key, concurrency_limit, queue, task, rate_key)
        WHERE state = 'queued' AND tag IS NOT NULL AND concurrency_key IS NOT NULL;
    """,
)

#: The live-workers registry (component ``quart_jobs_workers``).
WORKERS_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE qj_workers (
        name TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        tasks TEXT NOT NULL,
        queues TEXT,
        concurrency INTEGER NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX qj_workers_expiry ON qj_workers (expires_at);
    """,
)

#: Every component of the library, in the order :func:`migrate` applies them.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (versions.JOBS, MIGRATIONS),
    (versions.OPERATOR, OPERATOR_MIGRATIONS),
    (versions.WORKERS, WORKERS_MIGRATIONS),
)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring every component of the library up to date, inside the caller's transaction."""
    for component, scripts in COMPONENTS:
        migrate_component(conn, component, scripts)


def migrate_component(conn: sqlite3.Connection, component: str, scripts: Sequence[str]) -> int:
    """Apply the scripts of ``component`` the database lacks, inside the caller's transaction;
    return the version it had before (0: none).

    Applications keep their tables beside the jobs under a component name of their own.
    """
    conn.execute(versions.SCHEMA_TABLE)
    row = conn.execute(versions.SCHEMA_VERSION, (component,)).fetchone()
    current = 0 if row is None else int(row[0])
    if current > len(scripts):
        raise SchemaTooNew(versions.too_new(component, current, len(scripts)))
    for script in scripts[current:]:
        for statement in _statements(script):
            conn.execute(statement)
    conn.execute(versions.SCHEMA_SET_VERSION, (component, len(scripts)))
    return current


def _statements(script: str) -> list[str]:
    """The statements of ``script``; a trigger's body (``BEGIN … END;``) stays whole."""
    statements: list[str] = []
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                statements.append(pending)
            pending = ""
    if pending.strip(" \n\t;"):
        statements.append(pending)
    return statements
