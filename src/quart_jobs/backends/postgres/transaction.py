"""The application's transaction on PostgreSQL (:meth:`PostgresBackend.run_transaction`).

The application's function is synchronous; it runs in a thread of the backend's own, on a
connection of a pool for those threads (psycopg's blocking one), so each of its statements is
one round trip to the server and nothing more. (They went through the event loop before: under
a flood of requests each statement waited for a busy loop, and a transaction holding a lock,
the queue limits' or an owner's row in the fair book, held it across those waits.) The
function's statements and enqueues share that transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...models import EnqueueResult, Job, NewJob
from ..base import BackendTransaction, Outcome, Params, QueueLimits
from ..rows import job_from_row
from ..shared_sql import deps
from ..shared_sql.dialect import POSTGRESQL
from ..shared_sql.jobs import finish_in, insert_params
from . import statements as q
from .connections import SyncConnection as Connection
from .enqueue import EnqueueCall, enqueue_in
from .wakeup import finished_notices


class PostgresTransaction(BackendTransaction):
    dialect = "postgresql"
    placeholder = "%s"

    def __init__(
        self, conn: Connection, now: float, channel: str, schema: str, offset: float = 0.0
    ) -> None:
        self._conn = conn
        self._offset = offset
        self._now = now
        self._channel = channel
        self._schema = schema
        self.closed = False

    def _open(self) -> Connection:
        if self.closed:
            raise RuntimeError("this transaction has ended; use it inside its function only")
        return self._conn

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._open().execute(sql, params).rowcount

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        return self._open().execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return self._open().execute(sql, params).fetchall()

    def enqueue(
        self, jobs: Sequence[NewJob], *, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]:
        call = EnqueueCall([insert_params(job, self._now, self._offset) for job in jobs], limits)
        return enqueue_in(self._open(), call, self._channel, self._schema)

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
            for params in finished_notices(self._schema, [outcome.lease.job_id]):
                self.execute(q.NOTIFY, params)
        return held
