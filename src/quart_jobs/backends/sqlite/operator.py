"""The SQLite operator store: admin sessions, the write probe and the dashboard's counts, written
through the backend's one writer thread and read from its reader connections."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence

from ...models import JobState, Stats, Waiting, WorkerRecord
from ..operator import OperatorStore, StartedWaits
from ..shared_sql import operator as ops
from ..shared_sql import reasons
from ..shared_sql.dialect import SQLITE
from . import statements as s
from .readers import Readers
from .writer import Writer

_WAITING = reasons.statements(SQLITE)


class SQLiteOperator(OperatorStore):
    def __init__(self, writer: Writer, readers: Readers) -> None:
        self._writer = writer
        self._readers = readers

    async def create_session(self, session_id: str, expires_at: float, now: float) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(s.OPS["session_purge"], (now,))
            conn.execute(s.OPS["session_create"], (session_id, expires_at))

        await self._writer.run(run)

    async def session_active(self, session_id: str, now: float) -> bool:
        return await self._readers.run(
            lambda conn: (
                conn.execute(s.OPS["session_active"], (session_id, now)).fetchone() is not None
            )
        )

    async def end_session(self, session_id: str) -> None:
        await self._writer.run(lambda conn: conn.execute(s.OPS["session_end"], (session_id,)))

    async def probe_write(self, now: float) -> None:
        pad = secrets.token_hex(ops.PROBE_PAD // 2)
        await self._writer.run(lambda conn: conn.execute(s.OPS["probe"], (now, pad)))

    async def queue_gauges(self) -> Stats:
        def run(conn: sqlite3.Connection) -> Stats:
            queued = conn.execute(s.QUEUED_GAUGES).fetchall()
            running = conn.execute(s.RUNNING_GAUGES).fetchall()
            firsts = [row[2] for row in queued]
            enqueued = dict(
                conn.execute(s.enqueued_at_statement(len(firsts)), firsts) if firsts else ()
            )
            return ops.gauges_from_rows(queued, running, enqueued)

        return await self._readers.run(run)

    async def finished_counts(
        self, since: float, bucket_seconds: float
    ) -> dict[tuple[int, JobState], int]:
        def run(conn: sqlite3.Connection) -> dict[tuple[int, JobState], int]:
            rows = conn.execute(s.FINISHED_COUNTS, (since, bucket_seconds, since))
            return {(int(bucket), JobState(state)): n for bucket, state, n in rows}

        return await self._readers.run(run)

    async def started_waits(
        self, since: float, bucket_seconds: float, owners: int, now: float | None = None
    ) -> StartedWaits:
        sample = ops.waiting_sample(now, since)

        def run(conn: sqlite3.Connection) -> StartedWaits:
            window = (since, since, since)
            counts = conn.execute(s.STARTED_WAITS, (*window, since, bucket_seconds))
            longest = conn.execute(s.LONGEST_WAITING_OWNERS, (*window, *sample, owners))
            return ops.started_waits_from_rows(counts.fetchall(), longest.fetchall())

        return await self._readers.run(run)

    async def waiting_jobs(self, now: float, workers: Sequence[WorkerRecord]) -> Waiting:
        def run(conn: sqlite3.Connection) -> Waiting:
            return reasons.drive(
                reasons.count_waiting(now, workers),
                lambda name, params: conn.execute(_WAITING[name], params).fetchall(),
            )

        return await self._readers.run(run)
