"""The application's transaction on the memory backend (:meth:`MemoryBackend.run_transaction`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ...errors import ConfigurationError
from ...models import EnqueueResult, Job, NewJob
from ..base import BackendTransaction, Params, QueueLimits


class Store(Protocol):
    """What a transaction needs of the memory backend."""

    def enqueue_now(
        self, jobs: Sequence[NewJob], now: float, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]: ...

    def cancel_now(self, job_id: int, now: float, *, running: bool = True) -> Job | None: ...

    def job(self, job_id: int) -> Job | None: ...


class MemoryTransaction(BackendTransaction):
    """Enqueues and cancels applied at once, undone by :meth:`MemoryBackend.run_transaction`
    if the function raises. There are no SQL tables in memory."""

    dialect = "memory"

    def __init__(self, backend: Store, now: float) -> None:
        self._backend = backend
        self._now = now
        self.closed = False

    def _open(self) -> Store:
        if self.closed:
            raise RuntimeError("this transaction has ended; use it inside its function only")
        return self._backend

    def execute(self, sql: str, params: Params = ()) -> int:
        raise ConfigurationError("the memory backend has no SQL tables: use SQLite or PostgreSQL")

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        self.execute(sql, params)
        return None

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        self.execute(sql, params)
        return []

    def enqueue(
        self, jobs: Sequence[NewJob], *, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]:
        return self._open().enqueue_now(jobs, self._now, limits)

    def get(self, job_id: int) -> Job | None:
        return self._open().job(job_id)

    def cancel(self, job_id: int) -> Job | None:
        return self._open().cancel_now(job_id, self._now, running=False)
