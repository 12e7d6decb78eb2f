"""The one way a shared statement becomes a dialect's: :func:`render`.

A statement both SQL backends run is written once, in SQLite's form: ``?`` for each parameter,
and a named slot (``{fair}``, ``{skip_locked}``, ...) wherever the dialects spell it
differently. :func:`render` fills the slots from the dialect's row of :data:`SLOTS`, then, for
PostgreSQL, turns each ``?`` into ``%s`` (a ``?`` inside a quoted literal stays) and doubles a
literal ``%``. A dialect's own statements (its ``statements.py``) are written in its native
form and are not rendered.
"""

from __future__ import annotations

import functools
import re

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

#: What each slot becomes per dialect: SQLite's ``INDEXED BY`` hints (its planner has no
#: statistics on the partial indexes), PostgreSQL's row locks, and the one expression the two
#: spell differently (a time bucket's integer division; rows are at or after ``since``, so
#: truncating is flooring).
SLOTS: dict[str, dict[str, str]] = {
    SQLITE: {
        "fair": " INDEXED BY qj_jobs_fair",
        "rated": " INDEXED BY qj_jobs_rated",
        "due": " INDEXED BY qj_jobs_due",
        "keyed": " INDEXED BY qj_jobs_keyed",
        "leases": " INDEXED BY qj_jobs_leases",
        "skip_locked": "",
        "bucket": "CAST((finished_at - ?) / ? AS INTEGER)",
    },
    POSTGRESQL: {
        "fair": "",
        "rated": "",
        "due": "",
        "keyed": "",
        "leases": "",
        "skip_locked": " FOR UPDATE SKIP LOCKED",
        "bucket": "floor((finished_at - ?) / ?)::bigint",
    },
}

_SLOT = re.compile(r"\{(\w+)\}")


@functools.lru_cache(maxsize=1024)
def render(statement: str, dialect: str) -> str:
    """``statement`` (``?`` placeholders, ``{slot}`` names) in ``dialect``'s form."""
    try:
        slots = SLOTS[dialect]
    except KeyError:
        raise ValueError(
            f"unknown SQL dialect {dialect!r}: use {SQLITE!r} or {POSTGRESQL!r}"
        ) from None
    text = _SLOT.sub(lambda m: slots[m.group(1)], statement)
    if dialect == SQLITE:
        return text
    parts = text.split("'")
    for i in range(0, len(parts), 2):  # outside quotes
        parts[i] = parts[i].replace("%", "%%").replace("?", "%s")
    return "'".join(parts)
