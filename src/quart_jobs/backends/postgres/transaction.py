"""The application's transaction on PostgreSQL (:meth:`PostgresBackend.run_transaction`).

The application's function is synchronous and runs in a thread; each statement it sends is
executed on the event loop, on the one pooled connection whose transaction is open, and the
thread waits for its result. So the function's statements and enqueues share that transaction,
and the connection is only ever used from the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.rows import TupleRow

from ...models import EnqueueResult, Job, NewJob
from ..base import BackendTransaction, Outcome, Params, QueueLimits
from ..rows import job_from_row
from ..shared_sql import deps
from ..shared_sql.dialect import POSTGRESQL
from ..shared_sql.jobs import finish_in, insert_params
from . import statements as q
from .enqueue import EnqueueCall, enqueue_in
from .wakeup import notify_finished

Connection = psycopg.AsyncConnection[TupleRow]
T = TypeVar("T")


class PostgresTransaction(BackendTransaction):
    dialect = "postgresql"
    placeholder = "%s"

    def __init__(
        self,
        conn: Connection,
        loop: asyncio.AbstractEventLoop,
        now: float,
        channel: str,
        schema: str,
        offset: float = 0.0,
    ) -> None:
        self._conn = conn
        self._offset = offset
        self._loop = loop
        self._now = now
        self._channel = channel
        self._schema = schema
        self.closed = False

    def _call(self, make: Coroutine[Any, Any, T]) -> T:
        if self.closed:
            make.close()
            raise RuntimeError("this transaction has ended; use it inside its function only")
        return asyncio.run_coroutine_threadsafe(self._guarded(make), self._loop).result()

    async def _guarded(self, make: Coroutine[Any, Any, T]) -> T:
        if self.closed:  # checked again on the loop, where the transaction is ended
            make.close()
            raise RuntimeError("this transaction has ended; use it inside its function only")
        return await make

    def execute(self, sql: str, params: Params = ()) -> int:
        async def run() -> int:
            return (await self._conn.execute(sql, params)).rowcount

        return self._call(run())

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        async def run() -> tuple[Any, ...] | None:
            return await (await self._conn.execute(sql, params)).fetchone()

        return self._call(run())

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        async def run() -> list[tuple[Any, ...]]:
            return await (await self._conn.execute(sql, params)).fetchall()

        return self._call(run())

    def enqueue(
        self, jobs: Sequence[NewJob], *, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]:
        call = EnqueueCall([insert_params(job, self._now, self._offset) for job in jobs], limits)
        return self._call(enqueue_in(self._conn, call, self._channel, self._schema))

    def enqueue_after(
        self, jobs: Sequence[NewJob], after: Sequence[int], *, run_always: bool = False
    ) -> list[EnqueueResult]:
        rows = [insert_params(job, self._now, self._offset) for job in jobs]
        return deps.enqueue_after(self, jobs, rows, after, self._now, run_always=run_always)

    def get(self, job_id: int) -> Job | None:
        row = self.fetchone(f"{q.SELECT} WHERE id = %s", (job_id,))
        return None if row is None else job_from_row(row)

    def cancel(self, job_id: int) -> Job | None:
        self.execute(q.CANCEL_QUEUED, (self._now, job_id))
        return self.get(job_id)

    def finish(self, outcome: Outcome) -> bool:
        held = finish_in(self, outcome, self._now, POSTGRESQL, self._offset)
        if held and outcome.ends_job:
            self._call(notify_finished(self._conn, self._schema, [outcome.lease.job_id]))
        return held
