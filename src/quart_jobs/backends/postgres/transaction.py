"""The application's transaction on PostgreSQL (:meth:`PostgresBackend.run_transaction`) and
what runs it (:class:`TransactionRunner`).

The application's function is synchronous; it runs in a thread of the backend's own, on a
connection of a pool for those threads (psycopg's blocking one), so each of its statements is
one round trip to the server and nothing more. (They went through the event loop before: under
a flood of requests each statement waited for a busy loop, and a transaction holding a lock,
the queue limits' or an owner's row in the fair book, held it across those waits.) The
function's statements and enqueues share that transaction.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ...models import EnqueueResult, Job, NewJob
from ..base import BackendTransaction, Outcome, Params, QueueLimits
from ..rows import job_from_row
from ..running import in_job
from ..shared_sql import deps
from ..shared_sql.dialect import POSTGRESQL
from ..shared_sql.jobs import finish_in, insert_params
from . import statements as q
from .connections import Connections
from .connections import SyncConnection as Connection
from .enqueue import EnqueueCall, enqueue_in
from .wakeup import CHANNEL, finished_notices

T = TypeVar("T")

#: Connections of the pool that transactions of the application outside a job leave free.
PROCESSING_CONNECTIONS = 2


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


class TransactionRunner:
    """Runs the application's transaction functions, each on a thread of an executor of the
    store's own, one thread per pooled connection (the loop's default executor has CPUs + 4
    threads: under a flood of requests, six transactions at once waited there).

    Outside a job such transactions (an application's intake) hold at most ``max_size`` -
    :data:`PROCESSING_CONNECTIONS` connections at once (one, for a pool of at most that), given
    back when the thread is done, not when a cancelled caller stops waiting: a transaction holds
    its connection while its function runs, and a flood of them (requests placing orders, each
    waiting its turn at a lock) took every connection, so the worker's claims waited behind it
    and completed 4 jobs a second. A running job's own transactions are processing: they do
    not wait for that share."""

    def __init__(self, db: Connections, schema: str, max_size: int) -> None:
        self._db = db
        self._schema = schema
        self._max_size = max_size
        self._threads: ThreadPoolExecutor | None = None  # made while the store is open
        self._intake: asyncio.Semaphore | None = None  # bound to the loop of its first use

    async def run(self, func: Callable[[BackendTransaction], T], now: float) -> T:
        if in_job():
            return await asyncio.wrap_future(self._start(func, now))
        if self._intake is None:
            self._intake = asyncio.Semaphore(max(1, self._max_size - PROCESSING_CONNECTIONS))
        intake = self._intake
        await intake.acquire()
        loop = asyncio.get_running_loop()

        def give_back(_: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(intake.release)

        try:
            started = self._start(func, now)
        except BaseException:
            intake.release()
            raise
        started.add_done_callback(give_back)
        return await asyncio.wrap_future(started)

    def _start(
        self, func: Callable[[BackendTransaction], T], now: float
    ) -> concurrent.futures.Future[T]:
        now = self._db.now(now)
        offset = self._db.clock.offset

        def run(conn: Connection) -> T:
            tx = PostgresTransaction(conn, now, CHANNEL, self._schema, offset)
            try:
                return func(tx)
            finally:
                tx.closed = True

        context = contextvars.copy_context()  # as asyncio.to_thread: the caller's context
        if self._threads is None:
            self._threads = ThreadPoolExecutor(
                self._max_size, thread_name_prefix="quart-jobs-pg-tx"
            )
        # A caller cancelled before its thread began: the transaction is not run (as on
        # SQLite, a write that has not started); once begun, it ends as its function does.
        return self._threads.submit(context.run, self._db.in_transaction, run)

    def close(self) -> None:
        """The store closed: a store opened again makes new threads (and, maybe on another
        loop, a new semaphore)."""
        if self._threads is not None:
            self._threads.shutdown(wait=False)
            self._threads = None
        self._intake = None
