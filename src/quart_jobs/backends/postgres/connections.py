"""PostgreSQL plumbing for :mod:`.postgres`: driver errors translated at the boundary, group
commit for concurrent enqueues, and the LISTEN connection that wakes workers.

Group commit: every ``enqueue`` call of the process is put in a queue; a drainer task takes
all calls waiting at that moment and writes them in one transaction (one COMMIT, one WAL
flush for the whole batch), then resolves each caller's future after COMMIT returned. A few
drainers may run at once, so a batch is being filled while the previous one commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg import sql

from ...errors import BackendUnavailable

log = logging.getLogger("quart_jobs.postgres")

I = TypeVar("I")  # noqa: E741 - an item submitted to a group commit
R = TypeVar("R")

#: Errors after which retrying the same transaction may succeed (deadlock, serialization).
RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def unavailable(url: str, exc: BaseException) -> BackendUnavailable:
    """The :class:`BackendUnavailable` a caller sees for a driver or pool error."""
    where = f"PostgreSQL at {redact_url(url)}"
    if isinstance(exc, psycopg_pool.PoolTimeout):
        message = f"{where}: no connection free or reachable in time ({exc}); is it up?"
    elif isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        message = f"{where} cannot be reached or used: {_one_line(exc)}"
    else:
        message = f"{where} refused the operation, nothing was changed: {_one_line(exc)}"
    return BackendUnavailable(message)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def translated(url: str, *, everything: bool = True) -> Iterator[None]:
    """Raise driver errors as :class:`BackendUnavailable`.

    ``everything=False`` translates only connection-level failures (for the application's own
    SQL, whose integrity errors it wants to see)."""
    kinds: tuple[type[BaseException], ...] = (
        (psycopg.Error, psycopg_pool.PoolTimeout)
        if everything
        else (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout)
    )
    try:
        yield
    except kinds as exc:
        raise unavailable(url, exc) from exc


@contextlib.asynccontextmanager
async def pipelined_transaction(conn: psycopg.AsyncConnection[Any]) -> AsyncIterator[None]:
    """A transaction in pipeline mode whose BEGIN and COMMIT cost no round trip of their own:
    BEGIN goes out with the first statements, COMMIT with the last ones, and the block's exit
    sends them (one sync); the cursors' results can be read after it. psycopg's own
    ``transaction()`` waits for the server after BEGIN and again after COMMIT. On an error the
    transaction is rolled back before the connection goes back to the pool."""
    try:
        async with conn.pipeline():
            await conn.execute("BEGIN")
            yield
            await conn.execute("COMMIT")
    except BaseException:
        if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                await conn.execute("ROLLBACK")
        raise


@dataclass(slots=True)
class _Pending(Generic[I, R]):
    item: I
    size: int
    future: asyncio.Future[R]


class GroupCommit(Generic[I, R]):
    """Merges concurrent ``submit`` calls into one ``flush`` call.

    ``flush(items)`` returns one result per item, or an exception for the items that failed
    alone; an exception raised by ``flush`` itself fails every item of the batch.
    """

    def __init__(
        self,
        flush: Callable[[list[I]], Awaitable[list[R | BaseException]]],
        *,
        max_batch: int = 1000,
        max_inflight: int = 2,
    ) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._pending: list[_Pending[I, R]] = []
        self._drainers: set[asyncio.Task[None]] = set()

    async def submit(self, item: I, size: int = 1) -> R:
        """Queue ``item`` (``size`` rows) for the next batch; return its result after COMMIT."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(item, size, future))
        if len(self._drainers) < self._max_inflight:
            task = asyncio.create_task(self._drain(), name="quart-jobs postgres group commit")
            self._drainers.add(task)
            task.add_done_callback(self._drainers.discard)
        return await future

    async def wait_idle(self) -> None:
        """Wait until every submitted item was written (or failed)."""
        while self._drainers:
            await asyncio.gather(*self._drainers, return_exceptions=True)

    def _take(self) -> list[_Pending[I, R]]:
        batch: list[_Pending[I, R]] = []
        rows = 0
        while self._pending and (not batch or rows + self._pending[0].size <= self._max_batch):
            entry = self._pending.pop(0)
            if entry.future.cancelled():
                continue  # the caller gave up before its write started: do not perform it
            batch.append(entry)
            rows += entry.size
        return batch

    async def _drain(self) -> None:
        while self._pending:
            batch = self._take()
            if not batch:
                continue
            try:
                results = await self._flush([entry.item for entry in batch])
            except BaseException as exc:
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for entry, result in zip(batch, results, strict=True):
                if entry.future.done():
                    continue
                if isinstance(result, BaseException):
                    entry.future.set_exception(result)
                else:
                    entry.future.set_result(result)


class Listener:
    """One autocommit connection that LISTENs on ``channel`` and calls the subscribers.

    Started on the first subscription, stopped when the last one leaves. A lost connection is
    reopened with backoff; after every (re)connect the subscribers are called once, because
    notifications sent while nobody listened are lost (the workers' polling covers the gap).
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
        channel: str,
        payload: str,
        *,
        max_backoff: float = 5.0,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._payload = payload
        self._max_backoff = max_backoff
        self._callbacks: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._pid: int | None = None

    @property
    def pid(self) -> int | None:
        """The server process of the LISTEN connection while it is open (for diagnostics)."""
        return self._pid

    @property
    def callbacks(self) -> Sequence[Callable[[], None]]:
        return tuple(self._callbacks)

    def add(self, callback: Callable[[], None]) -> None:
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"quart-jobs LISTEN {self._channel}"
            )

    def remove(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._callbacks.remove(callback)
        if not self._callbacks and self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        self._callbacks.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _wake(self) -> None:
        for callback in tuple(self._callbacks):
            try:
                callback()
            except Exception:
                log.exception("a job notification subscriber failed")

    def _received(self, payload: str) -> None:
        """A notification arrived on the channel (subclasses read other payloads)."""
        if payload == self._payload:
            self._wake()

    async def _run(self) -> None:
        failures = 0
        while self._callbacks:
            try:
                async with self._listening() as notifies:
                    failures = 0
                    self._wake()
                    async for notify in notifies:
                        self._received(notify.payload)
            except (psycopg.Error, OSError, BackendUnavailable) as exc:
                failures += 1
                pause = min(self._max_backoff, 0.1 * 2**failures)
                log.warning("LISTEN %s lost (reconnecting in %.1fs): %s", self._channel, pause, exc)
                await asyncio.sleep(pause)

    @contextlib.asynccontextmanager
    async def _listening(self) -> AsyncIterator[AsyncIterator[psycopg.Notify]]:
        conn = await self._connect()
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._pid = conn.info.backend_pid
            yield conn.notifies()
        finally:
            self._pid = None
            await conn.close()
