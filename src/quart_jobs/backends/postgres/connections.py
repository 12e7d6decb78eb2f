"""The PostgreSQL backend's way to the server: its connections (:class:`Connections`: the pool,
the session settings, the server's clock), driver errors translated at the boundary, pipelined
transactions, and group commit for concurrent enqueues.

Group commit: every ``enqueue`` call of the process is put in a queue; a drainer task takes
all calls waiting at that moment and writes them in one transaction (one COMMIT, one WAL
flush for the whole batch), then resolves each caller's future after COMMIT returned. A few
drainers may run at once, so a batch is being filled while the previous one commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from ...errors import BackendUnavailable, ConfigurationError
from ..store_clock import OffsetRefresh, StoreClock, offset_from
from .statements import SERVER_TIME, WAKE

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


def broken(exc: BaseException) -> bool:
    """Whether ``exc`` (a :class:`BackendUnavailable`) came of a connection that failed."""
    return isinstance(exc.__cause__, psycopg.OperationalError | psycopg.InterfaceError)


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


#: After the transactions' pool failed to open, transactions fail at once for this long.
TX_POOL_RETRY_SECONDS = 1.0
#: Seconds between two wake-ups of :class:`Waker` while enqueues keep coming.
WAKE_INTERVAL = 0.005
#: Notifications to send once a transaction committed: ``(channel, payload)`` pairs.
Wakes = list[tuple[str, str]]


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


async def send_wakes(conn: psycopg.AsyncConnection[Any], wakes: Wakes) -> None:
    """Send ``wakes`` in a transaction of their own that waits for no WAL flush
    (:data:`~.statements.WAKE`)."""
    if wakes:
        channels, payloads = zip(*wakes, strict=True)
        await conn.execute(WAKE, (list(channels), list(payloads)))


class Waker:
    """Wake-ups announcing commits that are done, sent in the background: the committing
    caller does not wait for them, nor does its transaction hold PostgreSQL's notify lock.

    :meth:`send` returns at once; one task sends everything asked for meanwhile in one
    statement (:func:`send_wakes`); what is asked for within :data:`WAKE_INTERVAL` of a send
    goes out together at the interval's end. So each wake-up goes out after the commit it
    announces, the first after a quiet spell at once, and a process enqueueing without pause
    sends a few hundred a second, not one per enqueue. A wake-up that cannot be sent is
    dropped (logged): it is a hint, and the workers' polling covers it."""

    def __init__(self, db: Connections) -> None:
        self._db = db
        self._pending: dict[tuple[str, str], None] = {}
        self._task: asyncio.Task[None] | None = None

    def send(self, wakes: Wakes) -> None:
        self._pending.update(dict.fromkeys(wakes))
        if self._pending and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending and self._db.pool is not None:
                wakes, self._pending = list(self._pending), {}
                sent_at = loop.time()
                try:
                    async with self._db.connection() as conn:
                        await send_wakes(conn, wakes)
                except BackendUnavailable as exc:
                    log.debug("wake-up not sent (the workers' polling covers it): %s", exc)
                # What is asked for from now on waits for the interval's end, in one send.
                await asyncio.sleep(max(0.0, sent_at + WAKE_INTERVAL - loop.time()))
        finally:
            self._task = None

    async def idle(self) -> None:
        """Wait until what was asked for is sent (before the pool closes)."""
        while self._task is not None:
            await asyncio.shield(self._task)


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


Connection = psycopg.AsyncConnection[TupleRow]
SyncConnection = psycopg.Connection[TupleRow]
#: Seconds after which the server ends a session of ours idle inside a transaction (a client
#: cut off mid-transaction), releasing its locks.
IDLE_IN_TRANSACTION_SECONDS = 30


class Connections:
    """The backend's connections to one schema: a pool (psycopg 3) of autocommit sessions, and
    connections of their own for migrations and LISTEN; and the server's clock, measured
    against this process's ``wall`` at open and every :data:`~..store_clock.REFRESH_SECONDS`
    (:attr:`clock` moves every time a caller passes onto it)."""

    def __init__(
        self,
        url: str,
        schema: str,
        *,
        min_size: int,
        max_size: int,
        connect_timeout: float,
        pool_timeout: float,
        wall: Callable[[], float],
    ) -> None:
        self.url = url
        self.schema = schema
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        try:
            own_options = conninfo_to_dict(url).get("options")
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"DATABASE_URL {redact_url(url)!r} is not a valid PostgreSQL URL: {exc}"
            ) from None
        # A worker cut off (or killed) between two round trips of a transaction would leave it
        # open on the server, holding the row locks of the claim's tier clocks, so every other
        # worker's claim of that queue would wait until TCP noticed (hours): the server ends
        # such a session after IDLE_IN_TRANSACTION_SECONDS. Our transactions never wait on
        # the client that long. A URL's own ``options`` may set it (they come after it); the
        # schema's search_path comes last, so it wins.
        idle = f"-cidle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_SECONDS * 1000}"
        search_path = f"-csearch_path={schema}"
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(2, math.ceil(connect_timeout)),
            "options": " ".join(str(o) for o in (idle, own_options, search_path) if o),
            "application_name": "quart-jobs",
        }
        self.pool: psycopg_pool.AsyncConnectionPool[Connection] | None = None
        # The blocking connections of the application's transactions (see .transaction),
        # opened on the first one (a worker that runs none never connects them).
        self._tx_pool: psycopg_pool.ConnectionPool[SyncConnection] | None = None
        self._tx_pool_lock = threading.Lock()
        self._tx_pool_allowed = False  # between open() and close()
        self._checking: asyncio.Task[None] | None = None  # see _after_failure
        self._tx_pool_failed: tuple[float, BaseException] | None = None  # the last open's
        self._wall = wall
        self.clock = StoreClock()
        self.refresh = OffsetRefresh()
        self.measuring: asyncio.Task[None] | None = None
        self.waker = Waker(self)

    async def open(self, prepare: Callable[[Connection], Awaitable[None]]) -> None:
        """Run ``prepare`` (the migrations) in a transaction of a connection of its own,
        measure the server's clock, then open the pool."""
        conn = await self.connect()
        try:
            with translated(self.url):
                async with conn.transaction():
                    await prepare(conn)
                self.clock.measured(await measure_offset(conn, self._wall))
                self.refresh.due()  # measured: the next one in REFRESH_SECONDS
        finally:
            await conn.close()
        pool: psycopg_pool.AsyncConnectionPool[Connection] = psycopg_pool.AsyncConnectionPool(
            self.url,
            kwargs=self._kwargs,
            min_size=self._min_size,
            max_size=self._max_size,
            open=False,
            timeout=self._pool_timeout,
            name="quart-jobs",
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise unavailable(self.url, exc) from exc
        self.pool = pool
        self._tx_pool_allowed = True
        self._tx_pool_failed = None

    async def close(self) -> None:
        self._tx_pool_allowed = False  # a transaction thread still queued opens no new pool
        if self._checking is not None:
            self._checking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checking
        await self.waker.idle()
        await asyncio.to_thread(self._close_tx_pool)  # the lock may be held by an open
        if self.measuring is not None:
            self.measuring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.measuring
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()

    def now(self, now: float) -> float:
        """``now`` on the server's clock; measures the offset again when it is due (in the
        background, on a pooled connection: a failed measurement keeps the last offset)."""
        if self.refresh.due() and (self.measuring is None or self.measuring.done()):
            self.measuring = asyncio.get_running_loop().create_task(self._remeasure())
        return self.clock.now(now)

    async def _remeasure(self) -> None:
        with contextlib.suppress(BackendUnavailable):
            async with self.connection() as conn:
                self.clock.measured(await measure_offset(conn, self._wall))

    async def connect(self) -> Connection:
        """A connection of its own (not pooled), for migrations and LISTEN."""
        try:
            return await psycopg.AsyncConnection.connect(self.url, **self._kwargs)
        except psycopg.Error as exc:
            raise BackendUnavailable(
                f"cannot connect to PostgreSQL at {redact_url(self.url)}: "
                f"{' '.join(str(exc).split())}; check DATABASE_URL and that the server is up"
            ) from exc

    def pool_or_fail(self) -> psycopg_pool.AsyncConnectionPool[Connection]:
        if self.pool is None:
            raise BackendUnavailable("the PostgreSQL backend is not open; call open() first")
        return self.pool

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled autocommit connection; every driver error becomes BackendUnavailable."""
        try:
            with translated(self.url):
                async with self.pool_or_fail().connection() as conn:
                    yield conn
        except BackendUnavailable as exc:
            self._after_failure(exc)
            raise

    def _after_failure(self, exc: BackendUnavailable) -> None:
        """A pooled connection was found broken: test the idle ones soon (a server that
        restarted broke them all; each would fail one more operation before it is replaced)."""
        if not broken(exc) or self.pool is None:
            return
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(self.check_idle())

    async def check_idle(self) -> None:
        """Replace the idle pooled connections that no longer work (``psycopg_pool``'s
        ``check``)."""
        pool = self.pool
        if pool is not None:
            with contextlib.suppress(psycopg.Error, psycopg_pool.PoolClosed):
                await pool.check()

    def in_transaction(self, func: Callable[[SyncConnection], R]) -> R:
        """``func(conn)`` in a transaction on a blocking pooled connection, committed when it
        returns (rolled back if it raises); for a thread of its own, not the event loop.
        Connection failures become :class:`BackendUnavailable`; the application's own SQL
        errors reach it unchanged."""
        try:
            with (
                translated(self.url, everything=False),
                self._tx_pool_or_open().connection() as conn,
                conn.transaction(),
            ):
                return func(conn)
        except BackendUnavailable as exc:
            tx_pool = self._tx_pool
            if broken(exc) and tx_pool is not None:
                with contextlib.suppress(psycopg.Error, psycopg_pool.PoolClosed):
                    tx_pool.check()  # as _after_failure, in this thread
            raise

    def _close_tx_pool(self) -> None:
        with self._tx_pool_lock:
            tx_pool, self._tx_pool = self._tx_pool, None
        if tx_pool is not None:
            tx_pool.close()

    def _tx_pool_or_open(self) -> psycopg_pool.ConnectionPool[SyncConnection]:
        with self._tx_pool_lock:
            if not self._tx_pool_allowed or self.pool is None:
                raise BackendUnavailable("the PostgreSQL backend is not open; call open() first")
            failed = self._tx_pool_failed
            if failed is not None and time.monotonic() - failed[0] < TX_POOL_RETRY_SECONDS:
                # The threads queued behind a failed open fail at once, not one timeout each.
                raise unavailable(self.url, failed[1])
            if self._tx_pool is None:
                pool: psycopg_pool.ConnectionPool[SyncConnection] = psycopg_pool.ConnectionPool(
                    self.url,
                    kwargs=self._kwargs,
                    min_size=1,
                    max_size=self._max_size,
                    open=False,
                    timeout=self._pool_timeout,
                    name="quart-jobs-transactions",
                )
                try:
                    pool.open(wait=True, timeout=self._connect_timeout)
                except BaseException as exc:
                    pool.close()
                    self._tx_pool_failed = (time.monotonic(), exc)
                    raise
                self._tx_pool_failed = None
                self._tx_pool = pool
            return self._tx_pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A pooled connection inside a transaction (committed when the block ends without an
        exception). Connection failures become :class:`BackendUnavailable`; the application's
        own SQL errors (say ``UniqueViolation``) reach it unchanged."""
        try:
            with translated(self.url, everything=False):
                async with self.pool_or_fail().connection() as conn, conn.transaction():
                    yield conn
        except BackendUnavailable as exc:
            self._after_failure(exc)
            raise


async def measure_offset(conn: Connection, wall: Callable[[], float]) -> float:
    """The server's clock minus ``wall()``, over one round trip on ``conn``."""
    sent = wall()
    cur = await conn.execute(SERVER_TIME)
    row = await cur.fetchone()
    received = wall()
    return offset_from(float(row[0]) if row else received, sent, received)
