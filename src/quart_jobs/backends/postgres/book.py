"""The fair book on PostgreSQL: the tier clocks and the owners' next tags
(:mod:`quart_jobs.fairness`) read under row locks and written back in the claim's transaction.
Owner rows are locked in one order, so concurrent claims and tags never deadlock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from ... import fairness
from ..shared_sql import fair
from . import statements as q

Connection = psycopg.AsyncConnection[TupleRow]


async def load_book(
    conn: Connection, keys: Sequence[tuple[str, int, str | None]]
) -> fairness.FairBook:
    """The tier clocks and the next tags of the owners in ``keys``, their rows locked."""
    owners = fair.owner_keys(keys)
    columns = [list(c) for c in zip(*owners, strict=True)] if owners else [[], [], []]
    await conn.execute(q.ADD_OWNERS, columns)
    cur = await conn.execute(q.LOCK_OWNERS, columns)
    next_tags = {(str(a), int(b), str(c)): float(t) for a, b, c, t in await cur.fetchall()}
    cur = await conn.execute(q.TIERS)
    clocks = [fair.clock_from_row(r) for r in await cur.fetchall()]
    return fairness.FairBook(clocks, next_tags)


async def save_book(conn: Connection, book: fairness.FairBook) -> None:
    """Write back the owners' next tags and the tier clocks that changed (one statement per
    row: in pipeline mode they cost no round trip, where ``executemany`` would sync)."""
    if book.owners_changed:
        for params in fair.owner_params(book):
            await conn.execute(q.SAVE_OWNER, params)
        for tier in sorted({k[:2] for k in book.owners_changed}):
            await conn.execute(q.ENSURE_TIER, tier)
    if book.clocks_changed:
        for key in sorted(book.clocks_changed):
            await conn.execute(q.SAVE_TIER, fair.clock_params(book.clocks[key]))


async def tag(conn: Connection, due: Sequence[tuple[Any, ...]]) -> None:
    """Tag the due jobs (rows of :data:`~.statements.DUE`), in the order given."""
    if not due:
        return
    book = await load_book(conn, [(qu, p, o) for _, qu, p, o in due])
    tags = [book.tag(qu, p, o) for _, qu, p, o in due]
    await conn.execute(q.SET_TAGS, ([row[0] for row in due], tags))
    await save_book(conn, book)
