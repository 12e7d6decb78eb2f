"""SQLite connections for one process: a single writer thread with group commit, and readers.

Every write of the process goes through one thread that owns one connection. It drains all
writes waiting at that moment into one ``BEGIN IMMEDIATE … COMMIT`` transaction (group commit:
one fsync for the whole batch), each write inside its own savepoint so one failing write does
not undo the others, and resolves the callers' futures only after COMMIT returned. A write alone
in its batch (a lone caller) needs no savepoint: if it fails, the transaction is rolled back.
Consecutive writes that share a ``combine`` function (enqueues) run as one call of it, so many
callers' jobs go in with one multi-row statement.

Processing goes first: of the writes waiting when a batch forms, the *urgent* ones (the
worker's claims and outcomes, ``durable=False``, and the writes of running jobs) commit in a
transaction of their own before the others, which commit right after in the next one: all of
them, or while urgent writes come (in this turn or the last) at most :data:`INTAKE_SHARE` of
them (:func:`_share`), the rest waiting for the next turn behind the urgent writes that came
meanwhile. Under an intake flood a worker's round trip then waits for a short transaction and
at most that many writes, not for every write that piled up, so processing goes on while
intake floods (measured: docs/performance-notes.md). A batch with only a few other writes
commits them first, with the urgent ones after them in the same transaction: a claim then
sees the jobs enqueued in its batch (:func:`urgent_first`).

Writes that promise nothing on power loss (``durable=False``) commit with
``synchronous=NORMAL`` on a second connection, so no statement switches the level between two
transactions: every statement of this thread gives up the GIL and may wait to get it back
from a busy event loop (measured under a flood: 1.7 ms on average).

Readers use their own connections (:mod:`.readers`): in WAL mode they never wait for the
writer.

Whatever a write raises, ``SystemExit`` and ``KeyboardInterrupt`` included (the function an
application gives to ``jobs.transaction`` runs here), fails that write alone: it is rolled back
and its caller gets the exception. Nothing a write does stops the thread; if the thread ended
all the same, every write still waiting and every later one fails with
:class:`~quart_jobs.errors.BackendUnavailable` instead of waiting forever.

Several processes may share the file: they take turns at the write lock (:mod:`.turnstile`),
and a writer waits for it until ``busy_deadline`` passes, so callers never see "database is
locked" under ordinary contention.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from ...errors import BackendUnavailable
from .turnstile import Turnstile

log = logging.getLogger("quart_jobs.sqlite")

T = TypeVar("T")
ItemT = TypeVar("ItemT")
WriteFunc = Callable[[sqlite3.Connection], T]
#: Writes several callers' items in the caller's transaction: one value per item, in order.
Combine = Callable[[sqlite3.Connection, list[ItemT]], list[T]]

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

# Primary result codes (``sqlite_errorcode`` without its extended bits) that mean the storage
# itself failed: the whole batch is abandoned, not one write.
_STORAGE_CODES = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_BUSY,
    }
)
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def _primary_code(exc: BaseException) -> int | None:
    """The SQLite primary result code of ``exc`` (``None`` for an error SQLite did not raise)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_storage_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and _primary_code(exc) in _STORAGE_CODES


def _is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and _primary_code(exc) in _BUSY_CODES


def storage_error(path: Path, exc: BaseException) -> BackendUnavailable:
    return BackendUnavailable(f"SQLite database {path} cannot be used: {exc}")


def connect(path: Path, *, synchronous: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with WAL and the busy timeout."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch to WAL journal mode (got {mode})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        # A dependant cancelled by the trigger that resolves dependencies fires it in turn: the
        # cancel reaches every job downstream (the schema's ``qj_jobs_resolve``).
        conn.execute("PRAGMA recursive_triggers=ON")
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass(slots=True)
class _Write(Generic[T]):
    func: WriteFunc[T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop
    durable: bool
    savepoint: bool
    urgent: bool = False
    combine: Combine[Any, T] | None = None
    item: Any = None


class Writer:
    """The process's one SQLite writer: a thread running batched transactions."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        busy_deadline: float = 60.0,
        max_batch: int = 1024,
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        # Writes that promise nothing on power loss commit without the fsync (see submit), on a
        # connection of their own: no PRAGMA switches the level between two transactions (each
        # statement of this thread may wait for the GIL, which a busy event loop holds).
        self._relaxed = "NORMAL" if synchronous in ("FULL", "EXTRA") else synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._busy_deadline = busy_deadline
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Write[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conns: dict[str, sqlite3.Connection] = {}  # by synchronous level
        self._turnstile: Turnstile | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        # Why the thread ended (``None`` while it serves): guarded by _ended_lock, so a write
        # is either queued before the thread's last look at the queue or refused.
        self._ended: str | None = None
        self._ended_lock = threading.Lock()
        self._batch: list[_Write[Any]] = []  # the writes being committed (the thread's own)
        self._waiting: list[_Write[Any]] = []  # taken from the queue, not yet committed

    async def start(self) -> None:
        self._queue = queue.SimpleQueue()  # a thread that ended may have left its stop mark
        self._ended = None
        self._start_error = None
        self._ready.clear()
        self._thread = threading.Thread(
            target=self._run, name="quart-jobs-sqlite-writer", daemon=True
        )
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._start_error is not None:
            raise storage_error(self._path, self._start_error) from self._start_error

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def submit(
        self,
        func: WriteFunc[T],
        *,
        durable: bool = True,
        savepoint: bool = True,
        combine: tuple[Combine[Any, T], Any] | None = None,
        urgent: bool | None = None,
    ) -> asyncio.Future[T]:
        """Schedule ``func(conn)`` in the next transaction; the future resolves after COMMIT.

        ``durable=False`` marks a write that may be lost on power loss without breaking a
        promise (claims, heartbeats, outcomes: the job then runs again, at least once). A batch
        of only such writes commits with ``synchronous=NORMAL``; any durable write in a batch
        makes its commit use the configured level (``FULL``), which also makes every earlier
        WAL frame durable: the WAL is written in order.

        ``savepoint=False``: ``func`` runs a single statement, which SQLite undoes by itself if
        it fails, so it needs no savepoint of its own. ``combine``: see :meth:`run_combined`.

        ``urgent`` (default: ``not durable``): commit ahead of the other writes waiting, in a
        transaction of their own or after a few of them in one (see the module's docstring);
        for processing, never intake."""
        if self._thread is None:
            raise BackendUnavailable("the SQLite backend is not open; call open() first")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        write = _Write(
            func, future, loop, durable, savepoint, not durable if urgent is None else urgent
        )
        if combine is not None:
            write.combine, write.item = combine
        with self._ended_lock:
            if self._ended is not None:
                raise BackendUnavailable(f"the SQLite writer of {self._path} {self._ended}")
            self._queue.put(write)
        return future

    async def run(
        self,
        func: WriteFunc[T],
        *,
        durable: bool = True,
        savepoint: bool = True,
        urgent: bool | None = None,
    ) -> T:
        return await self.submit(func, durable=durable, savepoint=savepoint, urgent=urgent)

    async def run_combined(
        self, combine: Combine[ItemT, T], item: ItemT, *, durable: bool = True
    ) -> T:
        """``combine(conn, [item])[0]`` in the next transaction, returned after COMMIT. Items of
        writes with the same ``combine`` next to each other in a batch go in one call; if that
        call raises, each is written alone again, so each caller gets its own outcome."""
        return await self.submit(
            lambda conn: combine(conn, [item])[0], durable=durable, combine=(combine, item)
        )

    # --- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            for level in dict.fromkeys((self._synchronous, self._relaxed)):
                conn = connect(self._path, synchronous=level, busy_timeout_ms=self._busy_timeout_ms)
                self._conns[level] = conn
                # Opened: from now on the turnstile waits for the write lock, not SQLite's busy
                # handler. (In WAL mode a transaction that holds the write lock meets no other
                # busy case.)
                conn.execute("PRAGMA busy_timeout=0")
            self._turnstile = Turnstile(self._path)
        except BaseException as exc:
            self._start_error = exc
            self._end("could not open the database")
            self._close_conns()
            self._ready.set()
            return
        self._ready.set()
        reason = "was stopped"
        try:
            self._serve()
        except BaseException as exc:  # a bug of the writer itself: nobody may wait forever
            log.critical("the SQLite writer thread failed; writes now fail", exc_info=exc)
            reason = f"thread failed ({exc!r}); reopen the store"
        finally:
            self._end(reason)
            self._close_conns()
            self._turnstile.close()

    def _close_conns(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns = {}

    def _serve(self) -> None:
        stop = False
        processing = False  # the last turn had urgent writes
        while True:
            if not self._waiting:
                if stop:
                    return
                first = self._queue.get()  # nothing left over: wait for a write
                if first is None:
                    return
                self._waiting.append(first)
            stop = stop or self._take_queued()
            urgent = [w for w in self._waiting if w.urgent]
            others = [w for w in self._waiting if not w.urgent]
            # While processing writes come (this turn or the last), the writes left over stay
            # for the next turn, behind the urgent ones that come in meanwhile: intake cannot
            # hold processing up by more than INTAKE_SHARE writes. Without them, a turn takes
            # every write waiting (one commit for them all).
            take = _share(others) if urgent or processing else len(others)
            take = min(take, self._max_batch)
            processing = bool(urgent)
            self._batch, self._waiting = [*urgent, *others[:take]], others[take:]
            for part in urgent_first(urgent, others[:take]):
                self._commit_batch(part)
            self._batch = []

    def _take_queued(self) -> bool:
        """Move the writes queued now to ``_waiting`` (all: an urgent one behind many others is
        seen); ``True`` once the stop mark was seen."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            self._waiting.append(item)

    def _end(self, reason: str) -> None:
        """Refuse writes from now on, and fail those still queued or in the batch it was
        committing (those settled already keep their outcome)."""
        with self._ended_lock:
            self._ended = reason
        error = BackendUnavailable(f"the SQLite writer of {self._path} {reason}")
        left: Settled = [(write, None, error) for write in [*self._batch, *self._waiting]]
        self._batch = []
        self._waiting = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                left.append((item, None, error))
        _settle_all(left)

    def _begin(self, conn: sqlite3.Connection) -> None:
        assert self._turnstile is not None
        self._turnstile.begin(conn, time.monotonic() + self._busy_deadline, _is_busy)

    def _commit_batch(self, batch: list[_Write[Any]]) -> None:
        settled: list[tuple[_Write[Any], Any, BaseException | None]] = []
        level = self._synchronous if any(w.durable for w in batch) else self._relaxed
        conn = self._conns[level]
        try:
            self._begin(conn)
            # A caller that gave up before its write started: the write is not performed.
            writes = [w for w in batch if not w.future.cancelled()]
            commit = True
            if len(writes) == 1:
                commit = _write_alone(conn, writes[0], settled)  # False: rolled back
            else:
                for group in _groups(writes):
                    if len(group) == 1:
                        _write_one(conn, group[0], settled)
                    else:
                        _write_group(conn, group, settled)
            if commit:
                conn.execute("COMMIT")
        except BaseException as exc:  # the batch fails; the thread goes on
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("ROLLBACK failed")
            log.error("SQLite write batch of %d failed: %s", len(batch), exc)
            error = storage_error(self._path, exc)
            settled = [(w, None, error) for w in batch]
        _settle_all(settled)


#: At most this many writes that are not urgent (enqueues) commit in one turn of the writer; the
#: rest wait for the next turn, behind the urgent writes (claims, outcomes) that came meanwhile.
INTAKE_SHARE = 16


def _share(waiting: list[_Write[Any]]) -> int:
    """How many of the ``waiting`` writes (none urgent) a turn takes while processing goes on:
    :data:`INTAKE_SHARE` writes, counting writes next to each other with the same
    ``combine`` (enqueues, written by one statement) as one."""
    units = 0
    for i, write in enumerate(waiting):
        if write.combine is None or i == 0 or waiting[i - 1].combine != write.combine:
            units += 1
            if units > INTAKE_SHARE:
                return i
    return len(waiting)


#: A batch with at most this many writes that are not urgent commits them first, with its
#: urgent ones after them in the same transaction (see :func:`urgent_first`).
FEW_AHEAD = 4


def urgent_first(urgent: list[_Write[Any]], others: list[_Write[Any]]) -> list[list[_Write[Any]]]:
    """The transactions to commit a turn's writes in, each kind in the order submitted: the
    urgent writes first, then the others; one transaction when there is one kind only. When
    the others are few (:data:`FEW_AHEAD`: they cost the urgent ones a millisecond at most),
    they go first in one transaction with the urgent ones, so a claim in the batch sees the
    jobs enqueued with it: a VIP order whose enqueue met a worker's claim in one batch is the
    job that claim takes, not the next one (and the batch is one commit, not two)."""
    if not urgent or not others:
        return [urgent or others]
    if len(others) <= FEW_AHEAD:
        return [others + urgent]
    return [urgent, others]


Settled = list[tuple[_Write[Any], Any, BaseException | None]]


def _write_alone(conn: sqlite3.Connection, write: _Write[Any], settled: Settled) -> bool:
    """The only write of its transaction, with no savepoint: ``False`` if it failed (then the
    transaction is rolled back)."""
    try:
        value = write.func(conn)
    except BaseException as exc:  # SystemExit too: the caller's failure, not the writer's
        if is_storage_error(exc):
            raise
        conn.execute("ROLLBACK")
        settled.append((write, None, exc))
        return False
    settled.append((write, value, None))
    return True


def _write_one(conn: sqlite3.Connection, write: _Write[Any], settled: Settled) -> None:
    """One write among others: in its own savepoint (unless it is a single statement)."""
    if write.savepoint:
        conn.execute("SAVEPOINT w")
    try:
        value = write.func(conn)
    except BaseException as exc:  # SystemExit too: the caller's failure, not the writer's
        if is_storage_error(exc):
            raise
        if write.savepoint:
            conn.execute("ROLLBACK TO w")
        settled.append((write, None, exc))
    else:
        settled.append((write, value, None))
    if write.savepoint:
        conn.execute("RELEASE w")


def _write_group(conn: sqlite3.Connection, group: list[_Write[Any]], settled: Settled) -> None:
    """Writes with the same ``combine``, in one call of it; one by one if it raises."""
    combine = group[0].combine
    assert combine is not None
    conn.execute("SAVEPOINT g")
    try:
        values = combine(conn, [w.item for w in group])
    except BaseException as exc:
        if is_storage_error(exc):
            raise
        conn.execute("ROLLBACK TO g")
        conn.execute("RELEASE g")
        for write in group:
            _write_one(conn, write, settled)
        return
    conn.execute("RELEASE g")
    settled.extend((w, v, None) for w, v in zip(group, values, strict=True))


def _groups(writes: list[_Write[Any]]) -> list[list[_Write[Any]]]:
    """``writes`` in order, those next to each other with the same ``combine`` together."""
    groups: list[list[_Write[Any]]] = []
    for write in writes:
        if groups and write.combine is not None and groups[-1][0].combine == write.combine:
            groups[-1].append(write)
        else:
            groups.append([write])
    return groups


def _settle_all(settled: Settled) -> None:
    by_loop: dict[
        asyncio.AbstractEventLoop, list[tuple[_Write[Any], Any, BaseException | None]]
    ] = {}
    for item in settled:
        by_loop.setdefault(item[0].loop, []).append(item)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, items)
        except RuntimeError:  # the loop closed while we wrote: nobody is waiting any more
            pass


def _settle(items: list[tuple[_Write[Any], Any, BaseException | None]]) -> None:
    for write, value, error in items:
        if write.future.done():
            continue
        if error is not None:
            write.future.set_exception(error)
        else:
            write.future.set_result(value)
