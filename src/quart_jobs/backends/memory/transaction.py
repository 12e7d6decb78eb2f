"""The application's transaction on the memory backend (:meth:`MemoryBackend.run_transaction`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

from ...models import EnqueueResult, Job, NewJob
from ..base import BackendTransaction, Outcome, Params, QueueLimits


class Store(Protocol):
    """What a transaction needs of the memory backend."""

    def enqueue_now(
        self, jobs: Sequence[NewJob], now: float, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]: ...

    def cancel_now(self, job_id: int, now: float, *, running: bool = True) -> Job | None: ...

    def enqueue_after_now(
        self, jobs: Sequence[NewJob], after: Sequence[int], now: float, run_always: bool
    ) -> list[EnqueueResult]: ...

    def job(self, job_id: int) -> Job | None: ...

    def finish_now(self, outcomes: Sequence[Outcome], now: float) -> list[bool]: ...

    def app_db(self) -> sqlite3.Connection: ...


class MemoryTransaction(BackendTransaction):
    """Enqueues and cancels applied at once, undone by :meth:`MemoryBackend.run_transaction`
    if the function raises; the application's statements in a transaction of the backend's
    in-memory SQLite database (begun by the first), committed or rolled back with them."""

    dialect = "sqlite"
    placeholder = "?"

    def __init__(self, backend: Store, now: float) -> None:
        self._backend = backend
        self._now = now
        self._sql: sqlite3.Connection | None = None  # once a statement began the transaction
        self.closed = False

    def _open(self) -> Store:
        if self.closed:
            raise RuntimeError("this transaction has ended; use it inside its function only")
        return self._backend

    def _run(self, sql: str, params: Params) -> sqlite3.Cursor:
        backend = self._open()
        if self._sql is None:
            self._sql = backend.app_db()
            self._sql.execute("BEGIN")
        return self._sql.execute(sql, params)

    def commit_sql(self) -> None:
        if self._sql is not None:
            self._sql.execute("COMMIT")

    def rollback_sql(self) -> None:
        if self._sql is not None and self._sql.in_transaction:
            self._sql.execute("ROLLBACK")

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._run(sql, params).rowcount

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._run(sql, params).fetchone()
        return row

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._run(sql, params).fetchall())

    def enqueue(
        self, jobs: Sequence[NewJob], *, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]:
        return self._open().enqueue_now(jobs, self._now, limits)

    def enqueue_after(
        self, jobs: Sequence[NewJob], after: Sequence[int], *, run_always: bool = False
    ) -> list[EnqueueResult]:
        return self._open().enqueue_after_now(jobs, after, self._now, run_always)

    def get(self, job_id: int) -> Job | None:
        return self._open().job(job_id)

    def cancel(self, job_id: int) -> Job | None:
        return self._open().cancel_now(job_id, self._now, running=False)

    def finish(self, outcome: Outcome) -> bool:
        return self._open().finish_now([outcome], self._now)[0]
