"""SQL for the operator surface, shared by the SQLite and PostgreSQL backends: admin sessions,
the readiness write probe, and the cheap queue gauges behind ``/metrics``.

Its tables form their own schema component (``quart_jobs_operator``), versioned apart from the
job table's (each dialect's ``schema.py``), so they migrate independently of it. Statements
are rendered per dialect by :func:`~.dialect.render`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...models import JobState, Stats
from ..operator import WAIT_BOUNDS, WAITING_SAMPLE, OwnerWait, StartedWaits
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


#: The jobs that started at or after a time (parameters: since three times), each with its wait:
#: the finished ones through ``qj_jobs_finished`` (a job finished after it started, so a range
#: of that index holds every one), the running ones through the lease index. A job queued again
#: for another attempt is in neither: its next start counts.
_STARTED = (
    "WITH started AS ("
    "SELECT priority, owner, started_at, started_at - "
    "CASE WHEN run_at > enqueued_at THEN run_at ELSE enqueued_at END AS wait "
    "FROM qj_jobs{finished} WHERE finished_at >= ? AND started_at >= ? "
    "AND state IN ('succeeded', 'failed', 'cancelled') "
    "UNION ALL SELECT priority, owner, started_at, started_at - "
    "CASE WHEN run_at > enqueued_at THEN run_at ELSE enqueued_at END "
    "FROM qj_jobs{leases} WHERE state = 'running' AND started_at >= ?) "
)
_SLOT = (
    "CASE "
    + " ".join(f"WHEN wait <= {bound!r} THEN {i}" for i, bound in enumerate(WAIT_BOUNDS))
    + f" ELSE {len(WAIT_BOUNDS)} END"
)
#: Jobs started per time bucket, priority and wait slot. Parameters: since (three times, for
#: the window), since and the bucket's seconds.
STARTED_WAITS = (
    _STARTED + f"SELECT {{started_bucket}} AS bucket, priority, {_SLOT} AS slot, COUNT(*) "
    "FROM started GROUP BY bucket, priority, slot"
)
#: The ready jobs queued longest, each with its wait so far (parameters: now twice, how many):
#: the first ids of ``qj_jobs_state`` (ids grow in enqueue order), so a bounded read.
_WAITING = (
    "waiting AS (SELECT priority, owner, CAST(? AS DOUBLE PRECISION) - "
    "CASE WHEN run_at > enqueued_at THEN run_at ELSE enqueued_at END AS wait "
    "FROM qj_jobs WHERE state = 'queued' AND run_at <= ? ORDER BY id LIMIT ?) "
)
#: Per priority, the owners whose longest wait was longest: the waits of the jobs started in the
#: window and of the ready jobs still queued (a sample, :data:`_WAITING`). Parameters: since
#: (three times), now (twice), the sample's size, how many owners per priority.
LONGEST_WAITING_OWNERS = (
    _STARTED.rstrip() + ", " + _WAITING + "SELECT priority, owner, longest, n, w FROM ("
    "SELECT priority, owner, MAX(wait) AS longest, SUM(s) AS n, SUM(w) AS w, ROW_NUMBER() OVER "
    "(PARTITION BY priority ORDER BY MAX(wait) DESC, owner) AS place FROM ("
    "SELECT priority, owner, wait, 1 AS s, 0 AS w FROM started WHERE owner IS NOT NULL "
    "UNION ALL SELECT priority, owner, wait, 0, 1 FROM waiting WHERE owner IS NOT NULL"
    ") AS waits GROUP BY priority, owner) AS ranked "
    "WHERE place <= ? ORDER BY priority, place"
)


def waiting_sample(now: float | None, since: float) -> tuple[float, float, int]:
    """:data:`_WAITING`'s parameters: now twice and the sample's size (none without ``now``)."""
    if now is None:
        return (since, since, 0)
    return (now, now, WAITING_SAMPLE)


def started_waits_from_rows(
    counts: Iterable[tuple[int, int, int, int]],
    owners: Iterable[tuple[int, str, float, int, int]],
) -> StartedWaits:
    """:class:`StartedWaits` from :data:`STARTED_WAITS` and :data:`LONGEST_WAITING_OWNERS`
    rows."""
    return StartedWaits(
        {(int(b), int(p), int(s)): int(n) for b, p, s, n in counts},
        [OwnerWait(int(p), str(o), float(w), int(n), int(q)) for p, o, w, n, q in owners],
    )
