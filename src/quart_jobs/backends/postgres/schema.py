"""The whole PostgreSQL schema: every component's migration scripts, and how they are applied
(under an advisory lock, so processes starting together apply each script once).

Each script moves its component from version i to i + 1; ``qj_schema`` records how many were
applied (:mod:`..shared_sql.versions`). A released script never changes: a change is a new one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from ...errors import SchemaTooNew
from ..shared_sql import deps, versions
from ..shared_sql.dialect import POSTGRESQL, render

#: The job table and its fair-claim state (component ``quart_jobs``).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE qj_jobs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        task text NOT NULL,
        args text NOT NULL,
        kwargs text NOT NULL,
        priority integer NOT NULL,
        state text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL,
        enqueued_at double precision NOT NULL,
        run_at double precision NOT NULL,
        owner text,
        key text,
        timeout double precision,
        started_at double precision,
        finished_at double precision,
        worker text,
        lease_token text,
        lease_expires_at double precision,
        cancel_requested boolean NOT NULL DEFAULT false,
        result text,
        error text,
        traceback text,
        CONSTRAINT qj_jobs_state_known
            CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'))
    );
    CREATE UNIQUE INDEX qj_jobs_key ON qj_jobs (key) WHERE key IS NOT NULL;
    CREATE INDEX qj_jobs_claim ON qj_jobs (priority, id, run_at) WHERE state = 'queued';
    CREATE INDEX qj_jobs_ready ON qj_jobs (run_at, priority) WHERE state = 'queued';
    CREATE INDEX qj_jobs_leases ON qj_jobs (lease_expires_at) WHERE state = 'running';
    CREATE INDEX qj_jobs_state ON qj_jobs (state, id);
    CREATE INDEX qj_jobs_owner ON qj_jobs (owner, id) WHERE owner IS NOT NULL;
    CREATE INDEX qj_jobs_finished ON qj_jobs (finished_at) WHERE finished_at IS NOT NULL;
    CREATE INDEX qj_jobs_queued_owner ON qj_jobs (owner) WHERE state = 'queued';
    """,
    # Queues, concurrency keys and the fair claim (tags, tier clocks, owners' next tags).
    # Queued jobs of an older release have no tag: the claim tags them as it finds them due.
    """
    ALTER TABLE qj_jobs ADD COLUMN queue text NOT NULL DEFAULT 'default',
        ADD COLUMN concurrency_key text, ADD COLUMN concurrency_limit integer,
        ADD COLUMN tag double precision;

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
    # Fewer indexes per state change: the pre-fairness ``qj_jobs_claim`` and ``qj_jobs_ready``
    # go; the queued gauges, ``next_run_at`` and the oldest-queued statistics read
    # ``qj_jobs_fair`` and ``qj_jobs_due``, which carries the priority (see the SQLite schema).
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
    # Rate limits: ready jobs with a rate key in their own index (see the SQLite schema), each
    # key's log of starts in ``qj_rate_keys`` (its row lock is the key's lock in a claim).
    """
    ALTER TABLE qj_jobs ADD COLUMN rate_key text, ADD COLUMN rate_limit integer,
        ADD COLUMN rate_period double precision;
    CREATE TABLE qj_rate_keys (
        key text PRIMARY KEY,
        log text NOT NULL DEFAULT '[]',
        open_at double precision NOT NULL DEFAULT 0,
        period double precision NOT NULL DEFAULT 0
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
    ALTER TABLE qj_jobs ADD COLUMN why text;
    """,
    # Progress a running task reports (see the SQLite schema): no index.
    """
    ALTER TABLE qj_jobs ADD COLUMN progress double precision, ADD COLUMN progress_message text;
    """,
    # Dependencies between jobs (see the SQLite schema). The trigger's function runs only for
    # a job with dependants entering an end state; it wakes the workers when it may have made a
    # job ready and announces the cancels it made.
    f"""
    ALTER TABLE qj_jobs DROP CONSTRAINT qj_jobs_state_known;
    ALTER TABLE qj_jobs ADD CONSTRAINT qj_jobs_state_known
        CHECK (state IN ('waiting', 'queued', 'running', 'succeeded', 'failed', 'cancelled'));
    ALTER TABLE qj_jobs ADD COLUMN waiting_on integer NOT NULL DEFAULT 0;
    ALTER TABLE qj_jobs ADD COLUMN parents integer NOT NULL DEFAULT 0;
    ALTER TABLE qj_jobs ADD COLUMN dependants integer NOT NULL DEFAULT 0;
    ALTER TABLE qj_jobs ADD COLUMN run_always boolean NOT NULL DEFAULT false;
    CREATE TABLE qj_job_deps (
        child_id bigint NOT NULL,
        parent_id bigint NOT NULL,
        position integer NOT NULL,
        resolved boolean NOT NULL DEFAULT false,
        PRIMARY KEY (child_id, parent_id),
        CHECK (parent_id < child_id)
    );
    CREATE INDEX qj_job_deps_parent ON qj_job_deps (parent_id, resolved);
    CREATE FUNCTION qj_resolve_deps() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    DECLARE
        cancelled integer;
    BEGIN
        {deps.CANCEL_CHILDREN};
        GET DIAGNOSTICS cancelled = ROW_COUNT;
        {deps.STEP_CHILDREN};
        {deps.RESOLVE_EDGES};
        PERFORM pg_notify('quart_jobs', current_schema());
        IF cancelled > 0 THEN
            PERFORM pg_notify('quart_jobs_finished', current_schema() || ':*');
        END IF;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER qj_jobs_resolve AFTER UPDATE OF finished_at ON qj_jobs
    FOR EACH ROW WHEN ({deps.RESOLVE_WHEN}) EXECUTE FUNCTION qj_resolve_deps();
    CREATE FUNCTION qj_forget_edges() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    BEGIN
        {deps.FORGET_EDGES};
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER qj_jobs_forget_edges AFTER DELETE ON qj_jobs
    FOR EACH ROW WHEN (OLD.parents > 0) EXECUTE FUNCTION qj_forget_edges();
    """,
    # The trace context of a job's enqueue (see the SQLite schema): NULL when untraced.
    """
    ALTER TABLE qj_jobs ADD COLUMN trace_context text;
    """,
    # The next tags of jobs without an owner, one stripe per connection (see the statements'
    # ``OWNERLESS_STRIPES``): their enqueues from several processes take no common row lock.
    """
    CREATE TABLE qj_fair_ownerless (
        queue TEXT NOT NULL,
        priority INTEGER NOT NULL,
        stripe INTEGER NOT NULL,
        next_tag DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (queue, priority, stripe)
    );
    """,
)

#: Admin sessions, the readiness write probe and the index behind the count of jobs a full
#: concurrency key holds (component ``quart_jobs_operator``: what the operator surface reads).
OPERATOR_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE qj_admin_sessions (id text PRIMARY KEY, expires_at double precision NOT NULL);
    CREATE INDEX qj_admin_sessions_expiry ON qj_admin_sessions (expires_at);
    CREATE TABLE qj_write_probe (id integer PRIMARY KEY CHECK (id = 1),
        at double precision NOT NULL, pad text NOT NULL);
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

#: The names a schema may have (it becomes the connections' ``search_path``).
SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# One advisory lock serializes every migration of the database (all schemas, all components).
MIGRATION_LOCK = int.from_bytes(b"qj-migr", "big")

_SCHEMA_TABLE = render(versions.SCHEMA_TABLE, POSTGRESQL)
_SCHEMA_VERSION = render(versions.SCHEMA_VERSION, POSTGRESQL)
_SCHEMA_SET_VERSION = render(versions.SCHEMA_SET_VERSION, POSTGRESQL)

Connection = psycopg.AsyncConnection[Any]


async def migrate(conn: Connection, schema: str) -> None:
    """Create ``schema`` when missing and bring every component of the library up to date in
    it, inside the caller's transaction."""
    await lock_migrations(conn)
    await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    for component, scripts in COMPONENTS:
        await migrate_component(conn, component, scripts)


async def lock_migrations(conn: Connection) -> None:
    """Serialize migrations across processes until the caller's transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))


async def migrate_component(conn: Connection, component: str, scripts: Sequence[str]) -> int:
    """Apply the scripts of ``component`` the database lacks, inside the caller's transaction
    (under an advisory lock, so processes starting together apply each script once); return
    the version it had before (0: none).

    Applications keep their tables beside the jobs under a component name of their own.
    """
    await lock_migrations(conn)
    await conn.execute(_SCHEMA_TABLE)
    cur = await conn.execute(_SCHEMA_VERSION, (component,))
    row = await cur.fetchone()
    current = 0 if row is None else int(row[0])
    if current > len(scripts):
        raise SchemaTooNew(versions.too_new(component, current, len(scripts)))
    for script in scripts[current:]:
        await conn.execute(script)
    await conn.execute(_SCHEMA_SET_VERSION, (component, len(scripts)))
    return current
