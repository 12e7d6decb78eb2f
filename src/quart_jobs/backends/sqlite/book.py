"""The fair book on SQLite: the tier clocks and the owners' next tags (:mod:`quart_jobs.fairness`)
read in the writer's transaction and written back to it. The write lock serializes every
enqueue and claim of the file, so no row lock is needed."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ... import fairness
from ..shared_sql import fair
from . import statements as s


def load_book(
    conn: sqlite3.Connection, keys: Sequence[tuple[str, int, str | None]]
) -> fairness.FairBook:
    """A book with the tier clocks and the next tags of the owners in ``keys``."""
    clocks = [fair.clock_from_row(r) for r in conn.execute(s.TIERS)]
    owners = {}
    for key in fair.owner_keys(keys):
        row = conn.execute(s.OWNER_NEXT, key).fetchone()
        if row is not None:
            owners[key] = float(row[0])
    return fairness.FairBook(clocks, owners)


def save_book(conn: sqlite3.Connection, book: fairness.FairBook) -> None:
    """Write back the owners' next tags that changed and create the tiers not read (tiers the
    book read in this transaction exist: no statement for them)."""
    owners = fair.owner_params(book)
    if len(owners) == 1:
        conn.execute(s.SAVE_OWNER, owners[0])
    else:
        conn.executemany(s.SAVE_OWNER, owners)
    missing = sorted({k[:2] for k in book.owners_changed} - book.clocks.keys())
    if missing:
        conn.executemany(s.ENSURE_TIER, missing)


def tag_due(conn: sqlite3.Connection, now: float) -> None:
    """Tag the queued jobs whose ``run_at`` passed (delayed, retried, from an older release),
    in the order they became ready."""
    due = conn.execute(s.DUE, (now, fair.TAG_BATCH)).fetchall()
    if not due:
        return
    book = load_book(conn, [(q, p, o) for _, q, p, o in due])
    conn.executemany(s.SET_TAG, [(book.tag(q, p, o), job_id) for job_id, q, p, o in due])
    save_book(conn, book)
