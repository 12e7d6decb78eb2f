"""The application's transaction on SQLite (:meth:`SQLiteBackend.run_transaction`): its
statements and enqueues on the writer's connection, in the savepoint of one write of a
group-commit batch."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ...models import EnqueueResult, Job, NewJob
from ..base import BackendTransaction, Outcome, Params, QueueLimits
from ..shared_sql import deps
from ..shared_sql.dialect import SQLITE
from ..shared_sql.jobs import finish_in, insert_params
from . import statements as s
from .enqueue import enqueue, get


class SQLiteTransaction(BackendTransaction):
    dialect = "sqlite"
    placeholder = "?"

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self._conn = conn
        self._now = now
        self.closed = False
        #: Whether jobs were enqueued in it (the workers are then woken after the commit).
        self.enqueued = False

    def _open(self) -> sqlite3.Connection:
        if self.closed:
            raise RuntimeError("this transaction has ended; use it inside its function only")
        return self._conn

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._open().execute(sql, params).rowcount

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._open().execute(sql, params).fetchone()
        return row

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._open().execute(sql, params).fetchall())

    def enqueue(
        self, jobs: Sequence[NewJob], *, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]:
        rows = [insert_params(job, self._now) for job in jobs]
        self.enqueued = True
        return enqueue(self._open(), jobs, rows, limits)

    def enqueue_after(
        self, jobs: Sequence[NewJob], after: Sequence[int], *, run_always: bool = False
    ) -> list[EnqueueResult]:
        rows = [insert_params(job, self._now) for job in jobs]
        self.enqueued = True
        return deps.enqueue_after(self, jobs, rows, after, self._now, run_always=run_always)

    def get(self, job_id: int) -> Job | None:
        return get(self._open(), job_id)

    def cancel(self, job_id: int) -> Job | None:
        conn = self._open()
        conn.execute(s.CANCEL_QUEUED, (self._now, job_id))
        return get(conn, job_id)

    def finish(self, outcome: Outcome) -> bool:
        return finish_in(self, outcome, self._now, SQLITE)
