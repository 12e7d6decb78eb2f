"""The embedded default: jobs in one SQLite file (WAL), written by one thread with group commit.

Several processes on one machine may share the file; each has its own writer thread and the
file lock serializes their transactions (see :mod:`.sqlite_io`).

Times are the wall clock all processes on the machine share, with a backward step clamped: the
backend's ``now`` never goes below the largest it used or the database shows at open
(:mod:`.store_clock`), so queued jobs stay due.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ... import policy
from ...errors import BackendUnavailable, ConfigurationError, SchemaTooNew
from ...models import (
    FINISHED_STATES,
    EnqueueResult,
    Job,
    JobFilter,
    JobState,
    Lease,
    NewJob,
    Stats,
    WorkerRecord,
)
from ..base import (
    ANY_SCOPE,
    JOB_COLUMNS,
    Backend,
    BackendTransaction,
    Candidate,
    ClaimScope,
    Heartbeat,
    Outcome,
    Params,
    QueueLimits,
    job_from_row,
    new_job_record,
    purge_states,
)
from ..base import (
    stats_from_rows as _stats,
)
from ..events import outcome_events
from ..running import in_job
from ..shared_sql import fair
from ..shared_sql import jobs as sql
from ..shared_sql import operator as ops
from ..shared_sql import workers as live
from ..shared_sql.jobs import KEY, filter_sql, insert_params
from ..store_clock import HIGH_WATER, StoreClock
from .wakeup import Wakeup
from .writer import SYNCHRONOUS_MODES, Readers, Writer

T = TypeVar("T")

# Versioned schema: each entry moves the database from version i to i + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE qj_jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task TEXT NOT NULL,
        args TEXT NOT NULL,
        kwargs TEXT NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        enqueued_at REAL NOT NULL,
        run_at REAL NOT NULL,
        owner TEXT,
        key TEXT,
        timeout REAL,
        started_at REAL,
        finished_at REAL,
        worker TEXT,
        lease_token TEXT,
        lease_expires_at REAL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT,
        traceback TEXT
    );
    CREATE UNIQUE INDEX qj_jobs_key ON qj_jobs (key) WHERE key IS NOT NULL;
    CREATE INDEX qj_jobs_claim ON qj_jobs (priority, id, run_at) WHERE state = 'queued';
    CREATE INDEX qj_jobs_ready ON qj_jobs (run_at, priority) WHERE state = 'queued';
    CREATE INDEX qj_jobs_leases ON qj_jobs (lease_expires_at) WHERE state = 'running';
    CREATE INDEX qj_jobs_state ON qj_jobs (state, id);
    CREATE INDEX qj_jobs_owner ON qj_jobs (owner, id) WHERE owner IS NOT NULL;
    """,
    # Throughput over recent minutes and purges of old jobs both select by finished_at.
    """
    CREATE INDEX qj_jobs_finished ON qj_jobs (finished_at) WHERE finished_at IS NOT NULL;
    """,
    # Queued-job counters, kept by triggers in the writing transaction, so enqueue limits
    # (QueueLimits) cost two primary-key reads instead of a COUNT over the queue.
    """
    CREATE TABLE qj_queued_total (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
    CREATE TABLE qj_queued_by_owner (owner TEXT PRIMARY KEY, n INTEGER NOT NULL);
    INSERT INTO qj_queued_total (id, n) SELECT 1, COUNT(*) FROM qj_jobs WHERE state = 'queued';
    INSERT INTO qj_queued_by_owner (owner, n) SELECT owner, COUNT(*) FROM qj_jobs
        WHERE state = 'queued' AND owner IS NOT NULL GROUP BY owner;
    CREATE TRIGGER qj_queued_insert AFTER INSERT ON qj_jobs WHEN NEW.state = 'queued'
    BEGIN
        UPDATE qj_queued_total SET n = n + 1 WHERE id = 1;
        INSERT INTO qj_queued_by_owner (owner, n) SELECT NEW.owner, 1 WHERE NEW.owner IS NOT NULL
            ON CONFLICT (owner) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER qj_queued_enter AFTER UPDATE OF state ON qj_jobs
    WHEN OLD.state <> 'queued' AND NEW.state = 'queued'
    BEGIN
        UPDATE qj_queued_total SET n = n + 1 WHERE id = 1;
        INSERT INTO qj_queued_by_owner (owner, n) SELECT NEW.owner, 1 WHERE NEW.owner IS NOT NULL
            ON CONFLICT (owner) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER qj_queued_leave AFTER UPDATE OF state ON qj_jobs
    WHEN OLD.state = 'queued' AND NEW.state <> 'queued'
    BEGIN
        UPDATE qj_queued_total SET n = n - 1 WHERE id = 1;
        UPDATE qj_queued_by_owner SET n = n - 1 WHERE owner = OLD.owner;
    END;
    CREATE TRIGGER qj_queued_delete AFTER DELETE ON qj_jobs WHEN OLD.state = 'queued'
    BEGIN
        UPDATE qj_queued_total SET n = n - 1 WHERE id = 1;
        UPDATE qj_queued_by_owner SET n = n - 1 WHERE owner = OLD.owner;
    END;
    """,
    # Queues, concurrency keys and the fair claim (tags, tier clocks, owners' next tags).
    # Queued jobs of an older release have no tag: the claim tags them as it finds them due.
    """
    ALTER TABLE qj_jobs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE qj_jobs ADD COLUMN concurrency_key TEXT;
    ALTER TABLE qj_jobs ADD COLUMN concurrency_limit INTEGER;
    ALTER TABLE qj_jobs ADD COLUMN tag REAL;
    """
    + fair.SCHEMA,
    # Fewer indexes per state change (see fair_sql.LEAN_INDEXES).
    fair.LEAN_INDEXES,
)


def path_from_url(url: str) -> Path:
    """``sqlite:///var/x.db`` (relative to the working directory) or ``sqlite:////abs/x.db``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ConfigurationError(
            f"DATABASE_URL {url!r} is not a SQLite URL: use sqlite:///relative/path.sqlite3 "
            "or sqlite:////absolute/path.sqlite3"
        )
    return Path(url[len(prefix) :])


_SELECT = f"SELECT {JOB_COLUMNS} FROM qj_jobs"
_HEADS = fair.HEADS.format(hint=" INDEXED BY qj_jobs_fair")
_DUE = fair.DUE.format(hint=" INDEXED BY qj_jobs_due")
_NEXT_RUN_AT = sql.NEXT_RUN_AT.format(**sql.HINTS["sqlite"])
_OPS = ops.statements("?")
_LIVE = live.statements("sqlite")
_READY = live.ready_statements("sqlite")


class SQLiteBackend(Backend):
    scheme = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        reader_threads: int = 2,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ConfigurationError(
                f"synchronous={synchronous!r}: use one of {', '.join(SYNCHRONOUS_MODES)}"
            )
        self.path = Path(path)
        self._writer = Writer(
            self.path, synchronous=synchronous.upper(), busy_timeout_ms=busy_timeout_ms
        )
        self._readers = Readers(self.path, threads=reader_threads, busy_timeout_ms=busy_timeout_ms)
        self._open = False
        #: Wake-ups between the processes sharing this file (UNIX datagram sockets beside it).
        self.wakeup = Wakeup(self.path)
        self._finished_watchers: dict[
            Callable[[Collection[int] | None], None], Callable[[int], None]
        ] = {}
        self._clock = StoreClock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteBackend:
        return cls(path_from_url(url), **options)

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._open:
            return
        try:  # a new project has no var/ yet: the store makes its own place
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocker = next((p for p in self.path.parents if p.exists()), None)
            reason = (
                f"{blocker} is a file, not a directory"
                if blocker is not None and not blocker.is_dir()
                else f"{exc.strerror or exc} ({exc.filename or self.path.parent})"
            )
            raise BackendUnavailable(
                f"cannot create the directory of the SQLite database {self.path}: {reason}"
            ) from None
        for target in (self.path, self.path.parent):
            if target.exists() and not os.access(target, os.W_OK):
                raise BackendUnavailable(
                    f"SQLite database {self.path} is not writable ({target} refuses writes): "
                    "check its permissions and that its file system is not read-only"
                )
        await self._writer.start()
        try:
            await self._writer.run(self._migrate)
        except BaseException:
            await self._writer.stop()
            raise
        self._open = True

    def _migrate(self, conn: sqlite3.Connection) -> None:
        migrate_component(conn, "quart_jobs", MIGRATIONS)
        migrate_component(conn, ops.COMPONENT, ops.SQLITE_MIGRATIONS)
        migrate_component(conn, live.COMPONENT, live.MIGRATIONS)
        self._clock.floor(conn.execute(HIGH_WATER).fetchone()[0])

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        self.wakeup.close()
        await self._writer.stop()
        self._readers.close()

    # --- wake-ups ------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[], None]) -> None:
        self.wakeup.subscribe_ready(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        self.wakeup.unsubscribe_ready(callback)

    def watch_finished(self, callback: Callable[[Collection[int] | None], None]) -> bool:
        """Finished jobs are announced through the wake-up sockets, best effort (a full socket
        queue drops one): ``False``, so a waiter still reads its job again now and then."""
        if callback not in self._finished_watchers:
            self._finished_watchers[callback] = lambda job_id: callback((job_id,))
            self.wakeup.subscribe_finished(self._finished_watchers[callback])
        return False

    def unwatch_finished(self, callback: Callable[[Collection[int] | None], None]) -> None:
        wrapper = self._finished_watchers.pop(callback, None)
        if wrapper is not None:
            self.wakeup.unsubscribe_finished(wrapper)

    def _recorded(self, outcomes: Sequence[Outcome], held: Sequence[bool]) -> None:
        ready, ended = outcome_events(outcomes, held)
        if ready:
            self.wakeup.jobs_ready()
        if ended:
            self.wakeup.jobs_finished(ended)

    # --- escape hatch for the application's own tables ---------------------------------------

    async def write(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``func(conn)`` in the process's next group-commit transaction (after COMMIT)."""
        return await self._writer.run(func, urgent=in_job())

    async def read(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``func(conn)`` on a reader connection (a consistent WAL snapshot per statement)."""
        return await self._readers.run(func)

    # --- queue operations --------------------------------------------------------------------

    async def enqueue(
        self, jobs: Sequence[NewJob], now: float, *, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]:
        now = self._clock.now(now)
        rows = [insert_params(job, now) for job in jobs]
        if limits is None and all(job.key is None for job in jobs):
            # Plain jobs of callers enqueueing at once go in with one multi-row INSERT.
            call: Call = (jobs, rows)
            results = await self._writer.run_combined(_enqueue_plain_calls, call)
        else:
            results = await self._writer.run(lambda conn: _enqueue(conn, jobs, rows, limits))
        if any(result.created for result in results):
            self.wakeup.jobs_ready()
        return results

    async def run_transaction(self, func: Callable[[BackendTransaction], T], now: float) -> T:
        now = self._clock.now(now)

        def run(conn: sqlite3.Connection) -> T:
            tx = _SQLiteTransaction(conn, now)
            try:
                return func(tx)
            finally:
                tx.closed = True

        # A running job's own writes are processing: they go ahead of queued enqueues.
        value = await self._writer.run(run, urgent=in_job())
        self.wakeup.jobs_ready()  # what it enqueued, if anything, is committed now
        return value

    async def claim(
        self,
        worker: str,
        limit: int,
        now: float,
        lease_seconds: float,
        scope: ClaimScope = ANY_SCOPE,
    ) -> list[Job]:
        now = self._clock.now(now)
        return await self._writer.run(
            lambda conn: _claim(conn, worker, limit, now, lease_seconds, scope),
            durable=False,
        )

    async def finish_and_claim(
        self,
        outcomes: Sequence[Outcome],
        worker: str,
        limit: int,
        now: float,
        lease_seconds: float,
        scope: ClaimScope = ANY_SCOPE,
    ) -> tuple[list[bool], list[Job]]:
        now = self._clock.now(now)

        def run(conn: sqlite3.Connection) -> tuple[list[bool], list[Job]]:
            held = _finish(conn, outcomes, now)
            claimed = _claim(conn, worker, limit, now, lease_seconds, scope) if limit else []
            return held, claimed

        held, claimed = await self._writer.run(run, durable=False)
        self._recorded(outcomes, held)
        return held, claimed

    async def heartbeat(
        self, leases: Sequence[Lease], now: float, lease_seconds: float
    ) -> list[Heartbeat]:
        now = self._clock.now(now)

        def run(conn: sqlite3.Connection) -> list[Heartbeat]:
            rows: list[tuple[Any, ...]] = []
            for start in range(0, len(leases), sql.LEASE_CHUNK):
                chunk = leases[start : start + sql.LEASE_CHUNK]
                statement = sql.heartbeat_statement(len(chunk), "sqlite")
                pairs = [v for x in chunk for v in (x.job_id, x.token)]
                rows += conn.execute(statement, (now + lease_seconds, *pairs)).fetchall()
            return sql.heartbeats(rows, leases)

        return await self._writer.run(run, durable=False)

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        now = self._clock.now(now)
        held = await self._writer.run(lambda conn: _finish(conn, outcomes, now), durable=False)
        self._recorded(outcomes, held)
        return held

    async def recover_expired(self, now: float) -> int:
        now = self._clock.now(now)
        recovered: int = await self._writer.run(
            durable=False,
            func=lambda conn: conn.execute(sql.RECOVER_EXPIRED, (now, now)).rowcount,
        )
        if recovered:
            self.wakeup.jobs_ready()  # waiters of the ones that failed for good read again
        return recovered

    async def cancel(self, job_id: int, now: float, *, running: bool = True) -> Job | None:
        now = self._clock.now(now)

        def run(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(sql.CANCEL, (now, job_id, running)).fetchone()
            return _get(conn, job_id) if row is None else job_from_row(row)

        job = await self._writer.run(run)
        if job is not None and job.state is JobState.CANCELLED:
            self.wakeup.jobs_finished((job_id,))
        return job

    async def retry(self, job_id: int, now: float) -> Job | None:
        now = self._clock.now(now)

        def run(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(sql.RETRY, (now, job_id)).fetchone()
            return _get(conn, job_id) if row is None else job_from_row(row)

        job = await self._writer.run(run)
        if job is not None and job.state is JobState.QUEUED:
            self.wakeup.jobs_ready()
        return job

    async def get(self, job_id: int) -> Job | None:
        return await self._readers.run(lambda conn: _get(conn, job_id))

    async def get_by_key(self, key: str) -> Job | None:
        return await self._readers.run(lambda conn: _get_by_key(conn, key))

    async def list_jobs(self, flt: JobFilter) -> list[Job]:
        where, params = filter_sql(flt, "?")
        sql = f"{_SELECT} {where} ORDER BY id DESC LIMIT ?"
        return await self._readers.run(
            lambda conn: [job_from_row(r) for r in conn.execute(sql, (*params, flt.limit))]
        )

    async def stats(self) -> Stats:
        def run(conn: sqlite3.Connection) -> Stats:
            return _stats(
                conn.execute(sql.STATS_BY_STATE).fetchall(),
                conn.execute(sql.STATS_OLDEST).fetchall(),
                conn.execute(sql.STATS_BY_QUEUE).fetchall(),
            )

        return await self._readers.run(run)

    async def ready_tasks(self) -> dict[tuple[str, str], int]:
        statement = fair.READY_TASKS.format(hint=" INDEXED BY qj_jobs_fair")
        return await self._readers.run(
            lambda conn: {(q, t): int(n) for q, t, n in conn.execute(statement)}
        )

    async def next_run_at(self) -> float | None:
        def run(conn: sqlite3.Connection) -> float | None:
            return self._clock.local(conn.execute(_NEXT_RUN_AT).fetchone()[0])

        return await self._readers.run(run)

    async def queue_gauges(self) -> Stats:
        def run(conn: sqlite3.Connection) -> Stats:
            queued = conn.execute(ops.QUEUED_GAUGES["sqlite"]).fetchall()
            running = conn.execute(ops.RUNNING_GAUGES["sqlite"]).fetchall()
            firsts = [row[2] for row in queued]
            marks = ", ".join("?" for _ in firsts)
            enqueued = dict(
                conn.execute(f"SELECT id, enqueued_at FROM qj_jobs WHERE id IN ({marks})", firsts)
                if firsts
                else ()
            )
            return ops.gauges_from_rows(queued, running, enqueued)

        return await self._readers.run(run)

    async def probe_write(self, now: float) -> None:
        pad = secrets.token_hex(ops.PROBE_PAD // 2)
        await self._writer.run(lambda conn: conn.execute(_OPS["probe"], (now, pad)))

    async def create_session(self, session_id: str, expires_at: float, now: float) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_OPS["session_purge"], (now,))
            conn.execute(_OPS["session_create"], (session_id, expires_at))

        await self._writer.run(run)

    async def session_active(self, session_id: str, now: float) -> bool:
        return await self._readers.run(
            lambda conn: (
                conn.execute(_OPS["session_active"], (session_id, now)).fetchone() is not None
            )
        )

    async def end_session(self, session_id: str) -> None:
        await self._writer.run(lambda conn: conn.execute(_OPS["session_end"], (session_id,)))

    async def ready_kinds(self) -> set[tuple[str, int, str]]:
        def run(conn: sqlite3.Connection) -> set[tuple[str, int, str]]:
            def fetchone(name: str, params: tuple[Any, ...]) -> Any:
                return conn.execute(_READY[name], params).fetchone()

            return live.drive(live.skip_scan(), fetchone)

        return await self._readers.run(run)

    async def ready_count(self, queue: str, priority: int, task: str) -> int:
        return await self._readers.run(
            lambda conn: int(conn.execute(_READY["count"], (queue, priority, task)).fetchone()[0])
        )

    async def register_worker(self, worker: WorkerRecord, now: float) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_LIVE["forget"], (now - live.FORGET_AFTER,))
            conn.execute(_LIVE["upsert"], live.upsert_params(worker))

        await self._writer.run(run)

    async def remove_worker(self, name: str) -> None:
        await self._writer.run(lambda conn: conn.execute(_LIVE["remove"], (name,)))

    async def live_workers(self, now: float) -> list[WorkerRecord]:
        return await self._readers.run(
            lambda conn: [live.worker_from_row(r) for r in conn.execute(_LIVE["live"], (now,))]
        )

    async def finished_counts(
        self, since: float, bucket_seconds: float
    ) -> dict[tuple[int, JobState], int]:
        def run(conn: sqlite3.Connection) -> dict[tuple[int, JobState], int]:
            rows = conn.execute(_FINISHED_COUNTS, (since, bucket_seconds, since))
            return {(int(bucket), JobState(state)): n for bucket, state, n in rows}

        return await self._readers.run(run)

    async def purge(
        self, before: float, states: Collection[JobState] = FINISHED_STATES
    ) -> dict[JobState, int]:
        names = purge_states(states)
        statement = sql.purge_statement(len(names), "sqlite")
        removed: dict[JobState, int] = {}

        def run(conn: sqlite3.Connection) -> int:
            rows = conn.execute(statement, (before, *names, sql.PURGE_BATCH_ROWS)).fetchall()
            return sql.count_removed(removed, rows)

        while names and await self._writer.run(run) == sql.PURGE_BATCH_ROWS:
            pass
        await self._writer.run(lambda conn: conn.execute(fair.FORGET_IDLE_OWNERS))
        return removed


_FINISHED_COUNTS = sql.finished_counts_statement("sqlite")


def migrate_component(conn: sqlite3.Connection, component: str, scripts: Sequence[str]) -> None:
    """Apply the scripts of ``component`` the database lacks, inside the caller's transaction.

    Applications keep their tables beside the jobs under a component name of their own.
    """
    conn.execute(sql.SCHEMA_TABLE)
    row = conn.execute(sql.SCHEMA_VERSION, (component,)).fetchone()
    current = 0 if row is None else int(row[0])
    if current > len(scripts):
        raise SchemaTooNew(
            f"the database's {component} schema is version {current}, newer than this code "
            f"knows ({len(scripts)}); upgrade quart-jobs or point DATABASE_URL at another database"
        )
    for script in scripts[current:]:
        for statement in _statements(script):
            conn.execute(statement)
    conn.execute(sql.SCHEMA_SET_VERSION, (component, len(scripts)))


def _statements(script: str) -> list[str]:
    """The statements of ``script``; a trigger's body (``BEGIN … END;``) stays whole."""
    statements: list[str] = []
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                statements.append(pending)
            pending = ""
    if pending.strip(" \n\t;"):
        statements.append(pending)
    return statements


def _enqueue(
    conn: sqlite3.Connection,
    jobs: Sequence[NewJob],
    rows: Sequence[tuple[Any, ...]],
    limits: QueueLimits | None,
) -> list[EnqueueResult]:
    """Insert ``jobs`` (those ready now tagged) in the caller's transaction (savepoint),
    checking ``limits``: raising QueueFull here rolls the savepoint back, so nothing is
    half-written."""
    if limits is None and all(job.key is None for job in jobs):
        return _enqueue_plain(conn, jobs, rows)
    ready = [row[sql.RUN_AT] <= row[sql.ENQUEUED_AT] for row in rows]
    book = _book(conn, [fair.tag_key(row) for row, ok in zip(rows, ready, strict=True) if ok])
    results = []
    for job, row, ok in zip(jobs, rows, ready, strict=True):
        if limits is not None:
            existing = None if job.key is None else _get_by_key(conn, job.key)
            if existing is not None:
                results.append(EnqueueResult(existing, created=False))
                continue
            limits.check(*_queued_counts(conn, job.owner))
        tag = book.tag(job.queue, job.priority, job.owner) if ok else None
        results.append(_insert(conn, job, row, tag))
    if any(r.created for r in results):
        _save_book(conn, book)
    return results


Call = tuple[Sequence[NewJob], Sequence[tuple[Any, ...]]]


def _enqueue_plain_calls(conn: sqlite3.Connection, calls: list[Call]) -> list[list[EnqueueResult]]:
    """Several callers' jobs with no key and no limits (:func:`_enqueue_plain` of all of them,
    in the callers' order): one list of results per call."""
    if len(calls) == 1:
        return [_enqueue_plain(conn, *calls[0])]
    flat = _enqueue_plain(
        conn, [job for jobs, _ in calls for job in jobs], [row for _, rows in calls for row in rows]
    )
    out, start = [], 0
    for jobs, _ in calls:
        out.append(flat[start : start + len(jobs)])
        start += len(jobs)
    return out


def _enqueue_plain(
    conn: sqlite3.Connection, jobs: Sequence[NewJob], rows: Sequence[tuple[Any, ...]]
) -> list[EnqueueResult]:
    """Jobs with no key and no limits: nothing can refuse them, so they are tagged (those ready
    now) and inserted by one multi-row statement per :data:`INSERT_CHUNK` rows."""
    ready = [row[sql.RUN_AT] <= row[sql.ENQUEUED_AT] for row in rows]
    book = _book(conn, [fair.tag_key(row) for row, ok in zip(rows, ready, strict=True) if ok])
    params = [
        (*row, book.tag(row[sql.QUEUE], row[sql.PRIORITY], row[sql.OWNER]) if ok else None)
        for row, ok in zip(rows, ready, strict=True)
    ]
    ids: list[int] = []
    for start in range(0, len(params), INSERT_CHUNK):
        chunk = params[start : start + INSERT_CHUNK]
        statement = _insert_values(len(chunk))
        # Ids ascend in the order of the rows (AUTOINCREMENT, nothing skipped: no key).
        ids += sorted(r[0] for r in conn.execute(statement, [v for p in chunk for v in p]))
    if len(ids) != len(rows):
        raise sqlite3.DatabaseError(f"inserted {len(ids)} jobs of {len(rows)}")  # never
    if rows:
        _save_book(conn, book)
    return [
        EnqueueResult(new_job_record(job, job_id, row[sql.ENQUEUED_AT], row[sql.RUN_AT]), True)
        for job, row, job_id in zip(jobs, rows, ids, strict=True)
    ]


#: Rows per multi-row INSERT (15 parameters each).
INSERT_CHUNK = 500
_INSERT_COLUMNS = (
    "INSERT INTO qj_jobs (task, args, kwargs, priority, state, max_attempts, enqueued_at, "
    "run_at, owner, key, timeout, queue, concurrency_key, concurrency_limit, tag) VALUES "
)
_INSERT_ROW = "(?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


@functools.lru_cache(maxsize=64)
def _insert_values(n: int) -> str:
    return _INSERT_COLUMNS + ", ".join([_INSERT_ROW] * n) + " RETURNING id"


class _SQLiteTransaction(BackendTransaction):
    """The application's statements on the writer's connection, in the savepoint of one
    write of a group-commit batch."""

    dialect = "sqlite"
    placeholder = "?"

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self._conn = conn
        self._now = now
        self.closed = False

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
        return _enqueue(self._open(), jobs, rows, limits)

    def get(self, job_id: int) -> Job | None:
        return _get(self._open(), job_id)

    def cancel(self, job_id: int) -> Job | None:
        conn = self._open()
        conn.execute(
            "UPDATE qj_jobs SET state = 'cancelled', finished_at = ? "
            "WHERE id = ? AND state = 'queued'",
            (self._now, job_id),
        )
        return _get(conn, job_id)


def _queued_counts(conn: sqlite3.Connection, owner: str | None) -> tuple[int, int]:
    """Queued jobs in total and of ``owner``, from the trigger-kept counters."""
    total = conn.execute("SELECT n FROM qj_queued_total WHERE id = 1").fetchone()
    owned = None
    if owner is not None:
        owned = conn.execute(
            "SELECT n FROM qj_queued_by_owner WHERE owner = ?", (owner,)
        ).fetchone()
    return (int(total[0]) if total else 0), (int(owned[0]) if owned else 0)


def _book(conn: sqlite3.Connection, keys: Sequence[tuple[str, int, str | None]]) -> policy.FairBook:
    """A book with the tier clocks and the next tags of the owners in ``keys``."""
    clocks = [fair.clock_from_row(r) for r in conn.execute(fair.TIERS)]
    owners = {}
    for key in fair.owner_keys(keys):
        row = conn.execute(fair.OWNER_NEXT, key).fetchone()
        if row is not None:
            owners[key] = float(row[0])
    return policy.FairBook(clocks, owners)


def _save_book(conn: sqlite3.Connection, book: policy.FairBook) -> None:
    """Write back the owners' next tags that changed and create the tiers not read (tiers the
    book read in this transaction exist: no statement for them)."""
    owners = fair.owner_params(book)
    if len(owners) == 1:
        conn.execute(fair.SAVE_OWNER, owners[0])
    else:
        conn.executemany(fair.SAVE_OWNER, owners)
    missing = sorted({k[:2] for k in book.owners_changed} - book.clocks.keys())
    if missing:
        conn.executemany(fair.ENSURE_TIER, missing)


def _insert(
    conn: sqlite3.Connection, new: NewJob, params: tuple[Any, ...], tag: float | None
) -> EnqueueResult:
    row = conn.execute(
        "INSERT INTO qj_jobs (task, args, kwargs, priority, state, max_attempts, enqueued_at, "
        "run_at, owner, key, timeout, queue, concurrency_key, concurrency_limit, tag) "
        "VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING RETURNING id",
        (*params, tag),
    ).fetchone()
    if row is not None:  # the stored job is exactly what was inserted: no need to read it back
        return EnqueueResult(new_job_record(new, row[0], params[5], params[6]), created=True)
    existing = conn.execute(f"{_SELECT} WHERE key = ?", (params[KEY],)).fetchone()
    return EnqueueResult(job_from_row(existing), created=False)


def _get_by_key(conn: sqlite3.Connection, key: str) -> Job | None:
    row = conn.execute(f"{_SELECT} WHERE key = ?", (key,)).fetchone()
    return None if row is None else job_from_row(row)


def _claim(
    conn: sqlite3.Connection,
    worker: str,
    limit: int,
    now: float,
    lease_seconds: float,
    scope: ClaimScope,
) -> list[Job]:
    """Claim up to ``limit`` jobs in the caller's transaction (``BEGIN IMMEDIATE``: claims,
    their tier clocks and concurrency counts are serialized by the write lock).

    Each (queue, priority, task) the worker may claim is one range of the named partial index
    ``qj_jobs_fair`` in ``(tag, id)`` order; :mod:`quart_jobs.policy` picks among the ranges'
    first jobs. Named, because without statistics the planner would scan and sort."""
    _tag_due(conn, now)
    clocks = [fair.clock_from_row(r) for r in conn.execute(fair.TIERS)]
    if scope.queues is not None:
        clocks = [c for c in clocks if c.queue in scope.queues]
    tasks = scope.tasks
    if tasks is None:
        tasks = tuple(r[0] for r in conn.execute(fair.QUEUED_TASKS))
    heads: dict[tuple[str, int], list[Candidate]] = {}
    for clock in clocks:
        # A tier gives at most ``limit`` starts: its first ``limit`` jobs are enough unless
        # one has a concurrency key (a job at its key's limit is skipped): then read more.
        found = _heads(conn, clock, tasks, limit)
        if any(c.concurrency_key is not None for c in found):
            found = _heads(conn, clock, tasks, 2 * limit + 4)
        if found:
            heads[(clock.queue, clock.priority)] = found
    if not heads:
        return []
    keyed = any(c.concurrency_key is not None for found in heads.values() for c in found)
    running = dict(conn.execute(fair.RUNNING_KEYS).fetchall()) if keyed else {}
    book = policy.FairBook(clocks)
    now = policy.claim_time(clocks, now)  # started_at in the order of the claims' commits
    chosen = book.start(heads, limit, scope.weights, now, running)
    if not chosen:
        return []
    conn.executemany(
        fair.SAVE_TIER, [fair.clock_params(book.clocks[k]) for k in book.clocks_changed]
    )
    order = {c.id: n for n, c in enumerate(chosen)}
    # One fresh token for this claim: (job id, token) names each lease uniquely.
    rows = conn.execute(
        "UPDATE qj_jobs SET state = 'running', attempts = attempts + 1, started_at = ?, "
        "worker = ?, lease_token = ?, lease_expires_at = ?, cancel_requested = 0 "
        f"WHERE id IN ({','.join('?' * len(chosen))}) AND state = 'queued' "
        f"RETURNING {JOB_COLUMNS}",
        (now, worker, secrets.token_hex(8), now + lease_seconds, *order),
    ).fetchall()
    return sorted((job_from_row(r) for r in rows), key=lambda j: order[j.id])


def _heads(
    conn: sqlite3.Connection, clock: policy.TierClock, tasks: Sequence[str], fetch: int
) -> list[Candidate]:
    """The first ``fetch`` claimable jobs of each task in the tier, in ``(tag, id)`` order."""
    found = [
        Candidate._make(r)
        for task in tasks
        for r in conn.execute(_HEADS, (clock.queue, clock.priority, task, fetch))
    ]
    if len(tasks) > 1:  # one task's range is in (tag, id) order already
        found.sort(key=lambda c: (c.tag, c.id))
    return found


def _tag_due(conn: sqlite3.Connection, now: float) -> None:
    """Tag the queued jobs whose ``run_at`` passed (delayed, retried, from an older release),
    in the order they became ready."""
    due = conn.execute(_DUE, (now, fair.TAG_BATCH)).fetchall()
    if not due:
        return
    book = _book(conn, [(q, p, o) for _, q, p, o in due])
    conn.executemany(fair.SET_TAG, [(book.tag(q, p, o), job_id) for job_id, q, p, o in due])
    _save_book(conn, book)


def _get(conn: sqlite3.Connection, job_id: int) -> Job | None:
    row = conn.execute(f"{_SELECT} WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else job_from_row(row)


def _finish(conn: sqlite3.Connection, outcomes: Sequence[Outcome], now: float) -> list[bool]:
    """Record outcomes in the caller's transaction; ``False`` for each refused (lease lost).
    Successes, the common case, are written by one statement per batch of 400."""
    held = [False] * len(outcomes)
    successes = [n for n, o in enumerate(outcomes) if o.state is JobState.SUCCEEDED]
    for start in range(0, len(successes), sql.LEASE_CHUNK):
        chunk = successes[start : start + sql.LEASE_CHUNK]
        results = {
            str(outcomes[n].lease.job_id): outcomes[n].result
            for n in chunk
            if outcomes[n].result is not None
        }
        leases = [v for n in chunk for v in (outcomes[n].lease.job_id, outcomes[n].lease.token)]
        done = {
            r[0]
            for r in conn.execute(
                "UPDATE qj_jobs SET state = 'succeeded', finished_at = ?, error = NULL, "
                "traceback = NULL, lease_token = NULL, lease_expires_at = NULL, "
                "result = json_extract(?, '$.\"' || id || '\"') "
                "WHERE state = 'running' AND (id, lease_token) IN "
                f"(VALUES {','.join(['(?, ?)'] * len(chunk))}) RETURNING id",
                (now, json.dumps(results), *leases),
            )
        }
        for n in chunk:
            held[n] = outcomes[n].lease.job_id in done
    for n, o in enumerate(outcomes):
        if o.state is not JobState.SUCCEEDED:
            statement, params = sql.finish_statement(o, now, "sqlite")
            held[n] = conn.execute(statement, params).rowcount == 1
    return held
