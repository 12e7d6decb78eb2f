"""The embedded default: jobs in one SQLite file (WAL), written by one thread with group commit.

Several processes on one machine may share the file; each has its own writer thread and the
file lock serializes their transactions (see :mod:`.writer`).

Times are the wall clock all processes on the machine share, with a backward step clamped: the
backend's ``now`` never goes below the largest it used or the database shows at open
(:mod:`..store_clock`), so queued jobs stay due.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ...errors import BackendUnavailable, ConfigurationError
from ...models import (
    DEPENDANTS_SHOWN,
    FINISHED_STATES,
    Dependencies,
    EnqueueResult,
    Job,
    JobFilter,
    JobState,
    Lease,
    NewJob,
    Progress,
    Stats,
    WorkerRecord,
)
from ..base import (
    ANY_SCOPE,
    Backend,
    BackendTransaction,
    ClaimScope,
    Heartbeat,
    Outcome,
    QueueLimits,
    Round,
)
from ..events import outcome_events
from ..rows import job_from_row, purge_states, stats_from_rows
from ..running import in_job
from ..shared_sql import deps
from ..shared_sql import jobs as shared
from ..shared_sql import workers as live
from ..shared_sql.dialect import SQLITE, render
from ..shared_sql.jobs import insert_params
from ..store_clock import StoreClock
from . import statements as s
from .claim import claim
from .database import SQLiteDatabase
from .enqueue import Call, enqueue, enqueue_plain_calls, get, get_by_key
from .finish import finish, write_progress
from .operator import SQLiteOperator
from .readers import Readers
from .schema import migrate
from .transaction import SQLiteTransaction
from .wakeup import Wakeup
from .writer import SYNCHRONOUS_MODES, Writer

T = TypeVar("T")


def path_from_url(url: str) -> Path:
    """``sqlite:///var/x.db`` (relative to the working directory) or ``sqlite:////abs/x.db``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ConfigurationError(
            f"DATABASE_URL {url!r} is not a SQLite URL: use sqlite:///relative/path.sqlite3 "
            "or sqlite:////absolute/path.sqlite3"
        )
    return Path(url[len(prefix) :])


class SQLiteBackend(Backend):
    scheme = "sqlite"
    database: SQLiteDatabase

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
        self.operator = SQLiteOperator(self._writer, self._readers)
        self.database = SQLiteDatabase(self._writer, self._readers)
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
        _create_private(self.path)
        await self._writer.start()
        try:
            await self._writer.run(self._migrate)
        except BaseException:
            await self._writer.stop()
            raise
        self._open = True

    def missing(self) -> str | None:
        return None if self.path.exists() else f"the SQLite database {self.path}"

    def _migrate(self, conn: sqlite3.Connection) -> None:
        migrate(conn)
        self._clock.floor(conn.execute(s.HIGH_WATER).fetchone()[0])

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

    def _recorded(
        self, outcomes: Sequence[Outcome], held: Sequence[bool], cascaded: bool = False
    ) -> None:
        """Wake the workers (a job queued again, or dependants the outcomes queued: the
        workers of other processes claim them now, not at their next poll) and the waiters."""
        ready, ended = outcome_events(outcomes, held)
        if ready or cascaded:
            self.wakeup.jobs_ready()
        if ended:
            self.wakeup.jobs_finished(ended)

    # --- escape hatch for the application's own tables ---------------------------------------

    async def write(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`SQLiteDatabase.write`: ``func(conn)`` in the next group commit."""
        return await self.database.write(func)

    async def read(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`SQLiteDatabase.read`: ``func(conn)`` on a reader connection."""
        return await self.database.read(func)

    # --- queue operations --------------------------------------------------------------------

    async def enqueue(
        self, jobs: Sequence[NewJob], now: float, *, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]:
        now = self._clock.now(now)
        rows = [insert_params(job, now) for job in jobs]
        if limits is None and all(job.key is None for job in jobs):
            # Plain jobs of callers enqueueing at once go in with one multi-row INSERT.
            call: Call = (jobs, rows)
            results = await self._writer.run_combined(enqueue_plain_calls, call)
        else:
            results = await self._writer.run(lambda conn: enqueue(conn, jobs, rows, limits))
        if any(result.created for result in results):
            self.wakeup.jobs_ready()
        return results

    async def run_transaction(self, func: Callable[[BackendTransaction], T], now: float) -> T:
        now = self._clock.now(now)

        def run(conn: sqlite3.Connection) -> T:
            tx = SQLiteTransaction(conn, now)
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
            lambda conn: claim(conn, worker, limit, now, lease_seconds, scope),
            durable=False,
        )

    async def claim_round(
        self,
        outcomes: Sequence[Outcome],
        worker: str,
        limit: int,
        now: float,
        lease_seconds: float,
        scope: ClaimScope = ANY_SCOPE,
    ) -> Round:
        """The outcomes, the claim and, after a partial claim, the next ready time, in one
        transaction of the writer (no reader's thread hop)."""
        now = self._clock.now(now)

        def run(conn: sqlite3.Connection) -> tuple[list[bool], bool, list[Job], float | None]:
            held, cascaded = finish(conn, outcomes, now)
            claimed = claim(conn, worker, limit, now, lease_seconds, scope) if limit else []
            next_at = None
            if limit > 0 and len(claimed) < limit:
                next_at = shared.next_run_at(conn.execute(s.NEXT_RUN_AT).fetchall(), scope.queues)
            return held, cascaded, claimed, next_at

        held, cascaded, claimed, next_at = await self._writer.run(run, durable=False)
        self._recorded(outcomes, held, cascaded)
        return Round(held, claimed, self._clock.local(next_at))

    async def heartbeat(
        self,
        leases: Sequence[Lease],
        now: float,
        lease_seconds: float,
        progress: Sequence[tuple[Lease, Progress]] = (),
    ) -> list[Heartbeat]:
        now = self._clock.now(now)

        def run(conn: sqlite3.Connection) -> list[Heartbeat]:
            write_progress(conn, progress)
            rows: list[tuple[Any, ...]] = []
            for start in range(0, len(leases), shared.LEASE_CHUNK):
                chunk = leases[start : start + shared.LEASE_CHUNK]
                statement = shared.heartbeat_statement(len(chunk), SQLITE)
                pairs = [v for x in chunk for v in (x.job_id, x.token)]
                rows += conn.execute(statement, (now + lease_seconds, *pairs)).fetchall()
            return shared.heartbeats(rows, leases)

        return await self._writer.run(run, durable=False)

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        now = self._clock.now(now)
        held, cascaded = await self._writer.run(
            lambda conn: finish(conn, outcomes, now), durable=False
        )
        self._recorded(outcomes, held, cascaded)
        return held

    async def recover_expired(self, now: float) -> int:
        now = self._clock.now(now)
        recovered: int = await self._writer.run(
            durable=False,
            func=lambda conn: conn.execute(s.RECOVER_EXPIRED, (now, now)).rowcount,
        )
        if recovered:
            self.wakeup.jobs_ready()  # waiters of the ones that failed for good read again
        return recovered

    async def cancel(self, job_id: int, now: float, *, running: bool = True) -> Job | None:
        now = self._clock.now(now)

        def run(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(s.CANCEL, (now, job_id, running)).fetchone()
            return get(conn, job_id) if row is None else job_from_row(row)

        job = await self._writer.run(run)
        if job is not None and job.state is JobState.CANCELLED:
            self.wakeup.jobs_finished((job_id,))
        return job

    async def retry(self, job_id: int, now: float) -> Job | None:
        now = self._clock.now(now)

        def run(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(s.RETRY, (now, job_id)).fetchone()
            return get(conn, job_id) if row is None else job_from_row(row)

        job = await self._writer.run(run)
        if job is not None and job.state is JobState.QUEUED:
            self.wakeup.jobs_ready()
        return job

    async def get(self, job_id: int) -> Job | None:
        return await self._readers.run(lambda conn: get(conn, job_id))

    async def get_by_key(self, key: str) -> Job | None:
        return await self._readers.run(lambda conn: get_by_key(conn, key))

    async def dependencies(self, job_id: int) -> Dependencies:
        def run(conn: sqlite3.Connection) -> Dependencies:
            parents = conn.execute(s.PARENTS, (job_id,)).fetchall()
            children = conn.execute(s.CHILDREN, (job_id, DEPENDANTS_SHOWN)).fetchall()
            return deps.dependencies_from_rows(parents, children)

        return await self._readers.run(run)

    async def list_jobs(self, flt: JobFilter) -> list[Job]:
        where, params = shared.filter_sql(flt)
        sql = render(f"{s.SELECT} {where} ORDER BY id DESC LIMIT ?", SQLITE)
        return await self._readers.run(
            lambda conn: [job_from_row(r) for r in conn.execute(sql, (*params, flt.limit))]
        )

    async def stats(self) -> Stats:
        def run(conn: sqlite3.Connection) -> Stats:
            return stats_from_rows(
                conn.execute(s.STATS_BY_STATE).fetchall(),
                conn.execute(s.STATS_OLDEST).fetchall(),
                conn.execute(s.STATS_BY_QUEUE).fetchall(),
            )

        return await self._readers.run(run)

    async def ready_tasks(self) -> dict[tuple[str, str], int]:
        return await self._readers.run(
            lambda conn: {(q, t): int(n) for q, t, n in conn.execute(s.READY_TASKS)}
        )

    async def next_run_at(self, scope: ClaimScope = ANY_SCOPE) -> float | None:
        def run(conn: sqlite3.Connection) -> float | None:
            rows = conn.execute(s.NEXT_RUN_AT).fetchall()
            return self._clock.local(shared.next_run_at(rows, scope.queues))

        return await self._readers.run(run)

    async def pause(self, queue: str, now: float) -> bool:
        now = self._clock.now(now)
        return bool(
            await self._writer.run(lambda conn: conn.execute(s.PAUSE, (queue, now)).rowcount)
        )

    async def resume(self, queue: str) -> bool:
        resumed = bool(
            await self._writer.run(lambda conn: conn.execute(s.RESUME, (queue,)).rowcount)
        )
        if resumed:
            self.wakeup.jobs_ready()
        return resumed

    async def paused(self) -> dict[str, float]:
        rows = await self._readers.run(lambda conn: conn.execute(s.PAUSED).fetchall())
        return {str(q): float(at) - self._clock.offset for q, at in rows}

    async def ready_kinds(self) -> set[tuple[str, int, str]]:
        def run(conn: sqlite3.Connection) -> set[tuple[str, int, str]]:
            def fetchone(name: str, params: tuple[Any, ...]) -> Any:
                return conn.execute(s.READY[name], params).fetchone()

            return live.drive(live.skip_scan(), fetchone) | live.drive(
                live.skip_scan(live.RATED), fetchone
            )

        return await self._readers.run(run)

    async def ready_count(self, queue: str, priority: int, task: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return sum(
                int(conn.execute(s.READY[name], (queue, priority, task)).fetchone()[0])
                for name in ("count", live.RATED + "count")
            )

        return await self._readers.run(run)

    async def register_worker(self, worker: WorkerRecord, now: float) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(s.LIVE["forget"], (now - live.FORGET_AFTER,))
            conn.execute(s.LIVE["upsert"], live.upsert_params(worker))

        await self._writer.run(run)

    async def remove_worker(self, name: str) -> None:
        await self._writer.run(lambda conn: conn.execute(s.LIVE["remove"], (name,)))

    async def live_workers(self, now: float) -> list[WorkerRecord]:
        return await self._readers.run(
            lambda conn: [live.worker_from_row(r) for r in conn.execute(s.LIVE["live"], (now,))]
        )

    async def purge(
        self, before: float, states: Collection[JobState] = FINISHED_STATES
    ) -> dict[JobState, int]:
        names = purge_states(states)
        statement = shared.purge_statement(len(names), SQLITE)
        removed: dict[JobState, int] = {}

        def run(conn: sqlite3.Connection) -> int:
            rows = conn.execute(statement, (before, *names, shared.PURGE_BATCH_ROWS)).fetchall()
            return shared.count_removed(removed, rows)

        while names and await self._writer.run(run) == shared.PURGE_BATCH_ROWS:
            pass
        await self._writer.run(lambda conn: conn.execute(s.FORGET_IDLE_OWNERS))
        return removed


def _create_private(path: Path) -> None:
    """Create the database file, empty, readable and writable by its owner only (0600), if it
    does not exist yet. SQLite gives the ``-wal`` and ``-shm`` files it makes beside it the
    main file's mode, so they are private too; an existing file keeps the mode its operator
    chose. The rows hold job arguments (an application's customers, orders, key digests):
    another local user must not read them.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:  # it exists; or SQLite's own open will say what is wrong, in its words
        return
    os.close(fd)
