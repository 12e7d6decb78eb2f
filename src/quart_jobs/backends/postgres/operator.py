"""The PostgreSQL operator store: admin sessions, the write probe and the dashboard's counts, on
the backend's connection pool (times shifted to the server's clock, as the jobs' are)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from ...errors import BackendUnavailable
from ...models import JobState, Stats, Waiting, WorkerRecord
from ..operator import OperatorStore, StartedWaits
from ..shared_sql import operator as ops
from ..shared_sql import reasons
from ..shared_sql.dialect import POSTGRESQL
from . import statements as q
from .connections import Connections, broken

_WAITING = reasons.statements(POSTGRESQL)


class PostgresOperator(OperatorStore):
    def __init__(self, db: Connections) -> None:
        self._db = db

    async def create_session(self, session_id: str, expires_at: float, now: float) -> None:
        clock = self._db.clock
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute(q.OPS["session_purge"], (clock.at(now),))
            await conn.execute(q.OPS["session_create"], (session_id, clock.at(expires_at)))

    async def session_active(self, session_id: str, now: float) -> bool:
        async with self._db.connection() as conn:
            cur = await conn.execute(q.OPS["session_active"], (session_id, self._db.clock.at(now)))
            return await cur.fetchone() is not None

    async def end_session(self, session_id: str) -> None:
        async with self._db.connection() as conn:
            await conn.execute(q.OPS["session_end"], (session_id,))

    async def probe_write(self, now: float) -> None:
        pad = secrets.token_hex(ops.PROBE_PAD // 2)

        async def probe() -> None:
            async with self._db.connection() as conn, conn.transaction():
                await conn.execute(q.OPS["probe"], (self._db.clock.at(now), pad))

        try:
            await probe()
        except BackendUnavailable as exc:
            if not broken(exc):
                raise
            # A pooled connection broken by a restart of the server is not the server being
            # down: once the idle ones are tested, ask once more.
            await self._db.check_idle()
            await probe()

    async def queue_gauges(self) -> Stats:
        async with self._db.connection() as conn:
            queued = await (await conn.execute(q.QUEUED_GAUGES)).fetchall()
            running = await (await conn.execute(q.RUNNING_GAUGES)).fetchall()
            firsts = [row[2] for row in queued]
            cur = await conn.execute(q.ENQUEUED_AT, (firsts,))
            enqueued = {int(i): float(t) for i, t in await cur.fetchall()}
        return ops.gauges_from_rows(queued, running, enqueued)

    async def finished_counts(
        self, since: float, bucket_seconds: float
    ) -> dict[tuple[int, JobState], int]:
        since = self._db.clock.at(since)
        async with self._db.connection() as conn:
            cur = await conn.execute(q.FINISHED_COUNTS, (since, bucket_seconds, since))
            rows = await cur.fetchall()
        return {(int(bucket), JobState(state)): int(n) for bucket, state, n in rows}

    async def started_waits(
        self, since: float, bucket_seconds: float, owners: int, now: float | None = None
    ) -> StartedWaits:
        since = self._db.clock.at(since)
        window = (since, since, since)
        sample = ops.waiting_sample(None if now is None else self._db.clock.at(now), since)
        async with self._db.connection() as conn:
            cur = await conn.execute(q.STARTED_WAITS, (*window, since, bucket_seconds))
            counts = await cur.fetchall()
            cur = await conn.execute(q.LONGEST_WAITING_OWNERS, (*window, *sample, owners))
            longest = await cur.fetchall()
        return ops.started_waits_from_rows(counts, longest)

    async def waiting_jobs(self, now: float, workers: Sequence[WorkerRecord]) -> Waiting:
        counting = reasons.count_waiting(self._db.clock.at(now), workers)
        async with self._db.connection() as conn:
            try:
                step = next(counting)
                while True:
                    cur = await conn.execute(_WAITING[step[0]], step[1])
                    step = counting.send(await cur.fetchall())
            except StopIteration as done:
                waiting: Waiting = done.value
                return waiting
