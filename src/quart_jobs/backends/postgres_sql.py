"""The SQL of the PostgreSQL backend: the versioned schema, and the statements it runs, built
by pure functions (no I/O here)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from . import fair_sql as fair
from .base import CANDIDATE_COLUMNS, JOB_COLUMNS

# Versioned schema: each entry moves the database from version i to i + 1.
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
    """
    + fair.SCHEMA,
)

# One advisory lock serializes every migration of the database (all schemas, all components).
MIGRATION_LOCK = int.from_bytes(b"qj-migr", "big")
# Enqueues with limits lock (LIMITS_LOCK, hashtext(schema)) while they count and insert.
LIMITS_LOCK = int.from_bytes(b"qjlm", "big")
SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


J_COLUMNS = ", ".join(f"j.{column.strip()}" for column in JOB_COLUMNS.split(","))
SELECT = f"SELECT {JOB_COLUMNS} FROM qj_jobs"
# One statement for a whole batch. Rows are inserted in ``ord`` order, so their identities
# ascend in the callers' order (FIFO); a duplicate key is skipped, its first row kept.
INSERT = (
    "INSERT INTO qj_jobs (task, args, kwargs, priority, state, max_attempts, enqueued_at, "
    "run_at, owner, key, timeout, queue, concurrency_key, concurrency_limit, tag) "
    "SELECT task, args, kwargs, priority, 'queued', max_attempts, enqueued_at, run_at, owner, "
    "key, timeout, queue, concurrency_key, concurrency_limit, tag "
    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::integer[], "
    "%s::integer[], %s::double precision[], %s::double precision[], %s::text[], %s::text[], "
    "%s::double precision[], %s::text[], %s::text[], %s::integer[], %s::double precision[]) "
    "WITH ORDINALITY AS new (task, args, kwargs, priority, max_attempts, enqueued_at, run_at, "
    "owner, key, timeout, queue, concurrency_key, concurrency_limit, tag, ord) ORDER BY ord "
    f"ON CONFLICT DO NOTHING RETURNING {JOB_COLUMNS}"
)
# The fair claim's PostgreSQL-only parts: row locks, and every tier range in one statement.
DUE = fair.DUE.format(hint="").replace("?", "%s") + " FOR UPDATE SKIP LOCKED"
SET_TAGS = (
    "UPDATE qj_jobs AS j SET tag = t.tag FROM unnest(%s::bigint[], %s::double precision[]) "
    "AS t(id, tag) WHERE j.id = t.id"
)
LOCK_TIERS = (
    fair.TIERS + " WHERE %s::text[] IS NULL OR queue = ANY(%s) ORDER BY queue, priority FOR UPDATE"
)
# Owner rows are created (next tag 0: no effect) then locked, in one order: no deadlock.
ADD_OWNERS = (
    "INSERT INTO qj_fair_owners (queue, priority, owner, next_tag) "
    "SELECT q, p, o, 0 FROM unnest(%s::text[], %s::integer[], %s::text[]) AS k(q, p, o) "
    "ORDER BY q, p, o ON CONFLICT DO NOTHING"
)
LOCK_OWNERS = (
    "SELECT f.queue, f.priority, f.owner, f.next_tag FROM qj_fair_owners AS f "
    "JOIN unnest(%s::text[], %s::integer[], %s::text[]) AS k(q, p, o) "
    "ON f.queue = k.q AND f.priority = k.p AND f.owner = k.o "
    "ORDER BY f.queue, f.priority, f.owner FOR UPDATE OF f"
)
HEADS = (
    f"SELECT c.* FROM unnest(%s::text[], %s::integer[], %s::text[]) AS r(queue, priority, task) "
    f"CROSS JOIN LATERAL (SELECT {CANDIDATE_COLUMNS} FROM qj_jobs AS j WHERE j.state = 'queued' "
    "AND j.tag IS NOT NULL AND j.queue = r.queue AND j.priority = r.priority AND j.task = r.task "
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
    f"WHERE j.id = c.id AND j.state = 'queued' RETURNING {J_COLUMNS}"
)


def insert_arrays(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """The parameters of :data:`INSERT`: one array per column."""
    return [list(column) for column in zip(*rows, strict=True)]
