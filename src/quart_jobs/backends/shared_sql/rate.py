"""The rate limits' SQL, written once for SQLite and PostgreSQL (rendered per dialect by
:func:`~.dialect.render`), and the rows both SQL backends read and write around
:mod:`quart_jobs.rate`.

Ready jobs with a rate key sit in ``qj_jobs_rated`` (queue, priority, task, rate_key, tag, id),
apart from ``qj_jobs_fair``: a claim finds the keys of a (queue, priority, task) range by a
skip scan (one seek per key, however many jobs each key holds), keeps the open ones, and reads
the first jobs of each. So a closed key's backlog costs one seek, and holds up nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...rate import KeyState, StartLog
from ..rows import RATED_CANDIDATE_COLUMNS

_RATED = "state = 'queued' AND tag IS NOT NULL AND rate_key IS NOT NULL"
_J_RATED = "j.state = 'queued' AND j.tag IS NOT NULL AND j.rate_key IS NOT NULL"

#: The rate keys with ready jobs in one (queue, priority, task) range, with their opening
#: time (0: a key that never started a job). Parameters: queue, priority, task, twice.
RATED_KEYS = (
    "WITH RECURSIVE k(key) AS ("
    f"SELECT (SELECT rate_key FROM qj_jobs{{rated}} WHERE {_RATED} "
    "AND queue = ? AND priority = ? AND task = ? ORDER BY rate_key LIMIT 1) "
    f"UNION ALL SELECT (SELECT j.rate_key FROM qj_jobs AS j{{rated}} WHERE {_J_RATED} "
    "AND j.queue = ? AND j.priority = ? AND j.task = ? AND j.rate_key > k.key "
    "ORDER BY j.rate_key LIMIT 1) FROM k WHERE k.key IS NOT NULL) "
    "SELECT k.key, COALESCE(r.open_at, 0) FROM k LEFT JOIN qj_rate_keys AS r ON r.key = k.key "
    "WHERE k.key IS NOT NULL"
)
#: The first ready jobs of one key in one (queue, priority, task) range, in ``(tag, id)``
#: order. Parameters: queue, priority, task, key, how many.
RATED_HEADS = (
    f"SELECT {RATED_CANDIDATE_COLUMNS} FROM qj_jobs{{rated}} WHERE {_RATED} "
    "AND queue = ? AND priority = ? AND task = ? AND rate_key = ? ORDER BY tag, id LIMIT ?"
    "{skip_locked}"
)
KEY_STATE = "SELECT log, open_at, period FROM qj_rate_keys WHERE key = ?"
SAVE_KEY = (
    "INSERT INTO qj_rate_keys (key, log, open_at, period) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET log = excluded.log, open_at = excluded.open_at, "
    "period = excluded.period"
)


def rated_keys_params(queue: str, priority: int, task: str) -> tuple[Any, ...]:
    return (queue, priority, task) * 2


def open_keys(rows: Sequence[Sequence[Any]], now: float) -> list[str]:
    """The keys of :data:`RATED_KEYS` rows whose window has room at ``now``."""
    return [str(key) for key, open_at in rows if float(open_at) <= now]


def state_from_row(row: Sequence[Any] | None) -> KeyState:
    """A key's :class:`KeyState` from ``(log, open_at, period)`` (``None``: no row yet)."""
    if row is None:
        return KeyState()
    return KeyState(StartLog.loads(row[0]), float(row[1]), float(row[2]))


def save_params(changed: Mapping[str, KeyState]) -> list[tuple[Any, ...]]:
    """Rows for :data:`SAVE_KEY`, in key order (the order PostgreSQL locks them in)."""
    return [
        (key, state.log.dumps(), state.open_at, state.period)
        for key, state in sorted(changed.items())
    ]
