"""SQL for the operator surface, shared by the SQLite and PostgreSQL backends: admin sessions,
the readiness write probe, and the cheap queue gauges behind ``/metrics``.

Its tables form their own schema component (``quart_jobs_operator``), versioned apart from the
job table's, so they migrate independently of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...models import JobState, Stats
from .jobs import HINTS

COMPONENT = "quart_jobs_operator"

# Same text for both dialects (``real``/``double precision`` both accept the epoch seconds).
SQLITE_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE qj_admin_sessions (id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
    CREATE INDEX qj_admin_sessions_expiry ON qj_admin_sessions (expires_at);
    CREATE TABLE qj_write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL,
        pad TEXT NOT NULL);
    """,
)
POSTGRES_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE qj_admin_sessions (id text PRIMARY KEY, expires_at double precision NOT NULL);
    CREATE INDEX qj_admin_sessions_expiry ON qj_admin_sessions (expires_at);
    CREATE TABLE qj_write_probe (id integer PRIMARY KEY CHECK (id = 1),
        at double precision NOT NULL, pad text NOT NULL);
    """,
)

#: Bytes the write probe rewrites each time: a page or so, so it needs room like an order does.
PROBE_PAD = 4096


def statements(placeholder: str) -> dict[str, str]:
    """The operator statements with ``placeholder`` (``?`` or ``%s``) for parameters."""
    p = placeholder
    return {
        "session_purge": f"DELETE FROM qj_admin_sessions WHERE expires_at < {p}",
        "session_create": f"INSERT INTO qj_admin_sessions (id, expires_at) VALUES ({p}, {p})",
        "session_active": f"SELECT 1 FROM qj_admin_sessions WHERE id = {p} AND expires_at >= {p}",
        "session_end": f"DELETE FROM qj_admin_sessions WHERE id = {p}",
        "probe": (
            f"INSERT INTO qj_write_probe (id, at, pad) VALUES (1, {p}, {p}) "
            "ON CONFLICT (id) DO UPDATE SET at = excluded.at, pad = excluded.pad"
        ),
    }


#: Queued jobs per priority with the smallest id (the longest waiting): one pass over the
#: partial indexes of queued jobs (``qj_jobs_fair``: ready, ``qj_jobs_due``: not yet ready; both
#: hold priority and id), never over finished jobs.
_QUEUED_GAUGES = (
    "SELECT priority, SUM(n), MIN(first) FROM ("
    "SELECT priority, COUNT(*) AS n, MIN(id) AS first FROM qj_jobs{fair} "
    "WHERE state = 'queued' AND tag IS NOT NULL GROUP BY queue, priority "
    "UNION ALL SELECT priority, COUNT(*), MIN(id) FROM qj_jobs{due} "
    "WHERE state = 'queued' AND tag IS NULL GROUP BY priority"
    ") AS parts GROUP BY priority"
)
QUEUED_GAUGES = {dialect: _QUEUED_GAUGES.format(**HINTS[dialect]) for dialect in HINTS}
#: Running jobs per priority, through the partial lease index (bounded by the workers' slots).
RUNNING_GAUGES = {
    "sqlite": (
        "SELECT priority, COUNT(*) FROM qj_jobs INDEXED BY qj_jobs_leases "
        "WHERE state = 'running' GROUP BY priority"
    ),
    "postgresql": (
        "SELECT priority, COUNT(*) FROM qj_jobs WHERE state = 'running' GROUP BY priority"
    ),
}


def gauges_from_rows(
    queued: Iterable[tuple[int, int, int]],
    running: Iterable[tuple[int, int]],
    enqueued_at: dict[int, float],
) -> Stats:
    """:class:`Stats` with only queued and running counts, from :data:`QUEUED_GAUGES` and
    :data:`RUNNING_GAUGES` rows and the enqueue times of the oldest ids."""
    counts: dict[tuple[JobState, int], int] = {}
    oldest: dict[int, float] = {}
    for priority, n, first_id in queued:
        counts[(JobState.QUEUED, int(priority))] = int(n)
        if first_id in enqueued_at:
            oldest[int(priority)] = float(enqueued_at[first_id])
    for priority, n in running:
        counts[(JobState.RUNNING, int(priority))] = int(n)
    return Stats(counts=counts, oldest_queued=oldest)
