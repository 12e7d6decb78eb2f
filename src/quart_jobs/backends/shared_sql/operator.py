"""SQL for the operator surface, shared by the SQLite and PostgreSQL backends: admin sessions,
the readiness write probe, and the cheap queue gauges behind ``/metrics``.

Its tables form their own schema component (``quart_jobs_operator``), versioned apart from the
job table's (each dialect's ``schema.py``), so they migrate independently of it. Statements
are rendered per dialect by :func:`~.dialect.render`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...models import JobState, Stats
from .dialect import render

#: Bytes the write probe rewrites each time: a page or so, so it needs room like an order does.
PROBE_PAD = 4096


_STATEMENTS = {
    "session_purge": "DELETE FROM qj_admin_sessions WHERE expires_at < ?",
    "session_create": "INSERT INTO qj_admin_sessions (id, expires_at) VALUES (?, ?)",
    "session_active": "SELECT 1 FROM qj_admin_sessions WHERE id = ? AND expires_at >= ?",
    "session_end": "DELETE FROM qj_admin_sessions WHERE id = ?",
    "probe": (
        "INSERT INTO qj_write_probe (id, at, pad) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET at = excluded.at, pad = excluded.pad"
    ),
}


def statements(dialect: str) -> dict[str, str]:
    """The operator statements for ``sqlite`` or ``postgresql``."""
    return {name: render(text, dialect) for name, text in _STATEMENTS.items()}


#: Queued jobs per priority with the smallest id (the longest waiting): one pass over the
#: partial indexes of queued jobs (``qj_jobs_fair``: ready, ``qj_jobs_due``: not yet ready; both
#: hold priority and id), never over finished jobs.
QUEUED_GAUGES = (
    "SELECT priority, SUM(n), MIN(first) FROM ("
    "SELECT priority, COUNT(*) AS n, MIN(id) AS first FROM qj_jobs{fair} "
    "WHERE state = 'queued' AND tag IS NOT NULL AND rate_key IS NULL GROUP BY queue, priority "
    "UNION ALL SELECT priority, COUNT(*), MIN(id) FROM qj_jobs{rated} "
    "WHERE state = 'queued' AND tag IS NOT NULL AND rate_key IS NOT NULL GROUP BY queue, priority "
    "UNION ALL SELECT priority, COUNT(*), MIN(id) FROM qj_jobs{due} "
    "WHERE state = 'queued' AND tag IS NULL GROUP BY priority"
    ") AS parts GROUP BY priority"
)
#: Running jobs per priority, through the partial lease index (bounded by the workers' slots).
RUNNING_GAUGES = (
    "SELECT priority, COUNT(*) FROM qj_jobs{leases} WHERE state = 'running' GROUP BY priority"
)


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
