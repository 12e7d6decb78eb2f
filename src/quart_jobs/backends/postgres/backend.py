"""PostgreSQL: jobs shared by any number of processes on any number of machines.

Claiming locks its candidates with ``FOR UPDATE SKIP LOCKED``, so concurrent workers never
wait for each other nor get the same job; the order among the candidates is decided by
:mod:`quart_jobs.fairness`, as in every backend (see :mod:`.claim`). Times are the
server's clock (seconds since the epoch in ``double precision`` columns): the backend measures
the server's clock against this process's at open and every 30 s and moves every time a caller
passes onto it (:mod:`.store_clock`), so processes whose clocks disagree still agree on which
jobs are due and which leases expired.

Enqueues of the process are group-committed (see :mod:`.connections`) and send
``NOTIFY quart_jobs`` in their transaction; :meth:`PostgresBackend.subscribe` LISTENs on one
dedicated connection to wake workers at once instead of at their next poll.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

from ...errors import ConfigurationError
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
from ..effects import merge_held, record_effects_alone
from ..rows import job_from_row, purge_states, stats_from_rows
from ..shared_sql import deps
from ..shared_sql import jobs as shared
from ..shared_sql import workers as live
from ..shared_sql.dialect import POSTGRESQL, render
from ..shared_sql.jobs import insert_params
from . import statements as q
from .claim import claim
from .connections import (
    Connection,
    Connections,
    GroupCommit,
    Wakes,
    pipelined_transaction,
)
from .database import PostgresDatabase
from .enqueue import EnqueueCall, flush, write
from .finish import finish, write_progress
from .operator import PostgresOperator
from .schema import SCHEMA_NAME, migrate
from .transaction import TransactionRunner
from .wakeup import CHANNEL, FinishedCallback, FinishedListener, Listener, notify_finished

T = TypeVar("T")


class PostgresBackend(Backend):
    """Jobs in PostgreSQL, through a pool of connections (psycopg 3).

    ``schema`` is where the tables live (created when missing; it becomes the connections'
    ``search_path``). ``min_size``/``max_size`` bound the pool; the LISTEN connection, opened
    on the first :meth:`subscribe`, is one more, and the application's transactions
    (:meth:`run_transaction`) have a pool of blocking connections of their own (1 to
    ``max_size``), opened on the first one. ``connect_timeout`` bounds how long
    :meth:`open` waits for the server, ``pool_timeout`` how long an operation waits for a free
    connection. ``group_commit`` merges concurrent enqueues into transactions of up to
    ``max_batch`` jobs. ``wall`` is this process's clock, measured against the server's
    (tests inject a wrong one).
    """

    scheme = "postgresql"
    database: PostgresDatabase

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        min_size: int = 2,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        pool_timeout: float = 10.0,
        group_commit: bool = True,
        max_batch: int = 1000,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not SCHEMA_NAME.fullmatch(schema):
            raise ConfigurationError(
                f"schema={schema!r}: use letters, digits and underscores (at most 63)"
            )
        if min_size < 1 or max_size < min_size:
            raise ConfigurationError(
                f"pool sizes min_size={min_size}, max_size={max_size}: "
                "need 1 <= min_size <= max_size"
            )
        self.url = url
        self.schema = schema
        self._db = Connections(
            url,
            schema,
            min_size=min_size,
            max_size=max_size,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
            wall=wall,
        )
        self._group: GroupCommit[EnqueueCall, list[EnqueueResult]] | None = (
            GroupCommit(self._flush_enqueues, max_batch=max_batch) if group_commit else None
        )
        self.operator = PostgresOperator(self._db)
        self.database = PostgresDatabase(self._db)
        self._listener = Listener(self._db.connect, CHANNEL, schema)
        self._finished = FinishedListener(self._db.connect, schema)
        self._transactions = TransactionRunner(self._db, schema, max_size)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresBackend:
        return cls(url, **options)

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._db.pool is None:
            await self._db.open(lambda conn: migrate(conn, self.schema))

    async def close(self) -> None:
        if self._group is not None:
            await self._group.wait_idle()
        await self._listener.stop()
        await self._finished.stop()
        await self._db.close()
        self._transactions.close()

    def _now(self, now: float) -> float:
        return self._db.now(now)

    # --- escape hatch for the application's own tables ---------------------------------------

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        """A pooled connection inside a transaction (committed when the block ends without an
        exception). Connection failures become :class:`BackendUnavailable`; the application's
        own SQL errors (say ``UniqueViolation``) reach it unchanged."""
        return self._db.transaction()

    async def run_transaction(self, func: Callable[[BackendTransaction], T], now: float) -> T:
        """``func`` in a transaction, on a blocking connection in a thread of its own
        (:class:`~.transaction.TransactionRunner`)."""
        return await self._transactions.run(func, now)

    def _connection(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        """A pooled autocommit connection; every driver error becomes BackendUnavailable."""
        return self._db.connection()

    # --- notifications -----------------------------------------------------------------------

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._listener.add(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        self._listener.remove(callback)

    def watch_finished(self, callback: FinishedCallback) -> bool:
        self._finished.watch(callback)
        return True

    def unwatch_finished(self, callback: FinishedCallback) -> None:
        self._finished.unwatch(callback)

    @property
    def listener_pid(self) -> int | None:
        """The server process id of the LISTEN connection, while one is open."""
        return self._listener.pid

    # --- queue operations --------------------------------------------------------------------

    async def enqueue(
        self, jobs: Sequence[NewJob], now: float, *, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]:
        now = self._now(now)
        call = EnqueueCall([insert_params(job, now, self._db.clock.offset) for job in jobs], limits)
        if not call.rows:
            return []
        if self._group is not None:
            return await self._group.submit(call, len(call.rows))
        (result,) = await write(self._db, [call])
        if isinstance(result, BaseException):
            raise result
        return result

    async def _flush_enqueues(
        self, calls: list[EnqueueCall]
    ) -> list[list[EnqueueResult] | BaseException]:
        return await flush(self._db, calls)

    async def claim(
        self,
        worker: str,
        limit: int,
        now: float,
        lease_seconds: float,
        scope: ClaimScope = ANY_SCOPE,
    ) -> list[Job]:
        if limit <= 0:
            return []
        _, claimed = await self.finish_and_claim([], worker, limit, now, lease_seconds, scope)
        return claimed

    async def claim_round(
        self,
        outcomes: Sequence[Outcome],
        worker: str,
        limit: int,
        now: float,
        lease_seconds: float,
        scope: ClaimScope = ANY_SCOPE,
    ) -> Round:
        """The outcomes and the claim in one transaction, pipelined: the outcomes, the due
        jobs, the locked tier clocks and the heads go in one round trip, the claim's writes,
        after a partial claim the next ready time, and the COMMIT in a second one (more only
        to tag due jobs or count concurrency keys)."""
        outcomes, early = await record_effects_alone(self, outcomes, now)
        if not outcomes and limit <= 0:
            return Round(merge_held(early, []), [])
        now = self._now(now)
        ended: Wakes = []
        async with self._connection() as conn:
            async with pipelined_transaction(conn):
                held = await finish(conn, outcomes, now, self._db.clock.offset, self.schema, ended)
                read = (
                    await claim(conn, worker, limit, now, lease_seconds, scope)
                    if limit > 0
                    else None
                )
            claimed, rows = ([], None) if read is None else await read()
            done = await held()
        # Committed: the jobs that ended are announced in the background, those of rounds
        # close together in one statement (a waiter's read every few seconds covers a loss).
        self._db.waker.send(ended)
        next_at = None if rows is None else shared.next_run_at(rows, scope.queues)
        return Round(merge_held(early, done), claimed, self._db.clock.local(next_at))

    async def heartbeat(
        self,
        leases: Sequence[Lease],
        now: float,
        lease_seconds: float,
        progress: Sequence[tuple[Lease, Progress]] = (),
    ) -> list[Heartbeat]:
        if not leases:
            return []
        now = self._now(now)
        rows: list[tuple[Any, ...]] = []
        async with self._connection() as conn:
            await write_progress(conn, progress)
            for start in range(0, len(leases), shared.LEASE_CHUNK):
                chunk = leases[start : start + shared.LEASE_CHUNK]
                statement = shared.heartbeat_statement(len(chunk), POSTGRESQL)
                pairs = [v for x in chunk for v in (x.job_id, x.token)]
                cur = await conn.execute(statement, (now + lease_seconds, *pairs))
                rows += await cur.fetchall()
        return shared.heartbeats(rows, leases)

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        held, _ = await self.finish_and_claim(outcomes, "", 0, now, 0.0)
        return held

    async def recover_expired(self, now: float) -> int:
        now = self._now(now)
        async with self._connection() as conn:
            cur = await conn.execute(q.RECOVER_EXPIRED, (now, now))
            if cur.rowcount:
                await notify_finished(conn, self.schema, None)  # some may have failed for good
            return cur.rowcount

    async def cancel(self, job_id: int, now: float, *, running: bool = True) -> Job | None:
        now = self._now(now)
        async with self._connection() as conn:
            cur = await conn.execute(q.CANCEL, (now, job_id, running))
            row = await cur.fetchone()
            if row is None:
                return await _get(conn, job_id)
            job = job_from_row(row)
            if job.state is JobState.CANCELLED and job.finished_at == now:
                await notify_finished(conn, self.schema, [job.id])
            return job

    async def retry(self, job_id: int, now: float) -> Job | None:
        now = self._now(now)
        async with self._connection() as conn:
            cur = await conn.execute(q.RETRY, (now, job_id))
            row = await cur.fetchone()
            if row is not None:
                await conn.execute(q.NOTIFY, (CHANNEL, self.schema))
                return job_from_row(row)
            return await _get(conn, job_id)

    async def get(self, job_id: int) -> Job | None:
        async with self._connection() as conn:
            return await _get(conn, job_id)

    async def get_by_key(self, key: str) -> Job | None:
        async with self._connection() as conn:
            cur = await conn.execute(f"{q.SELECT} WHERE key = %s", (key,))
            row = await cur.fetchone()
        return None if row is None else job_from_row(row)

    async def dependencies(self, job_id: int) -> Dependencies:
        async with self._connection() as conn, conn.pipeline():
            parents = await conn.execute(q.PARENTS, (job_id,))
            children = await conn.execute(q.CHILDREN, (job_id, DEPENDANTS_SHOWN))
            return deps.dependencies_from_rows(await parents.fetchall(), await children.fetchall())

    async def list_jobs(self, flt: JobFilter) -> list[Job]:
        where, params = shared.filter_sql(flt)
        statement = render(f"{q.SELECT} {where} ORDER BY id DESC LIMIT ?", POSTGRESQL)
        async with self._connection() as conn:
            cur = await conn.execute(statement, (*params, flt.limit))
            return [job_from_row(r) for r in await cur.fetchall()]

    async def stats(self) -> Stats:
        async with self._connection() as conn, conn.pipeline():
            cursors = [
                await conn.execute(statement)
                for statement in (q.STATS_BY_STATE, q.STATS_OLDEST, q.STATS_BY_QUEUE)
            ]
            rows = [await cur.fetchall() for cur in cursors]
        return stats_from_rows(*rows)

    async def ready_tasks(self) -> dict[tuple[str, str], int]:
        async with self._connection() as conn:
            cur = await conn.execute(q.READY_TASKS)
            return {(str(q), str(t)): int(n) for q, t, n in await cur.fetchall()}

    async def next_run_at(self, scope: ClaimScope = ANY_SCOPE) -> float | None:
        async with self._connection() as conn:
            cur = await conn.execute(q.NEXT_RUN_AT)
            rows = await cur.fetchall()
        return self._db.clock.local(shared.next_run_at(rows, scope.queues))

    async def pause(self, queue: str, now: float) -> bool:
        now = self._now(now)
        async with self._connection() as conn:
            cur = await conn.execute(q.PAUSE, (queue, now))
            return cur.rowcount > 0

    async def resume(self, queue: str) -> bool:
        async with self._connection() as conn:
            cur = await conn.execute(q.RESUME, (queue, CHANNEL, self.schema))
            return len(await cur.fetchall()) > 0

    async def paused(self) -> dict[str, float]:
        async with self._connection() as conn:
            cur = await conn.execute(q.PAUSED)
            rows = await cur.fetchall()
        offset = self._db.clock.offset
        return {str(queue): float(at) - offset for queue, at in rows}

    async def ready_kinds(self) -> set[tuple[str, int, str]]:
        kinds: set[tuple[str, int, str]] = set()
        async with self._connection() as conn:
            for scan in (live.skip_scan(), live.skip_scan(live.RATED)):
                try:
                    name, params = next(scan)
                    while True:
                        row = await (await conn.execute(q.READY[name], params)).fetchone()
                        name, params = scan.send(row)
                except StopIteration as done:
                    kinds |= done.value
        return kinds

    async def ready_count(self, queue: str, priority: int, task: str) -> int:
        total = 0
        async with self._connection() as conn:
            for name in ("count", live.RATED + "count"):
                cur = await conn.execute(q.READY[name], (queue, priority, task))
                row = await cur.fetchone()
                total += 0 if row is None else int(row[0])
        return total

    async def register_worker(self, worker: WorkerRecord, now: float) -> None:
        offset = self._db.clock.offset
        async with self._connection() as conn, conn.transaction():
            await conn.execute(q.LIVE["forget"], (self._db.clock.at(now) - live.FORGET_AFTER,))
            await conn.execute(q.LIVE["upsert"], live.upsert_params(worker, offset))

    async def remove_worker(self, name: str) -> None:
        async with self._connection() as conn:
            await conn.execute(q.LIVE["remove"], (name,))

    async def live_workers(self, now: float) -> list[WorkerRecord]:
        offset = self._db.clock.offset
        async with self._connection() as conn:
            cur = await conn.execute(q.LIVE["live"], (now + offset,))
            return [live.worker_from_row(r, offset) for r in await cur.fetchall()]

    async def purge(
        self, before: float, states: Collection[JobState] = FINISHED_STATES
    ) -> dict[JobState, int]:
        names = purge_states(states)
        before = self._db.clock.at(before)
        statement = shared.purge_statement(len(names), POSTGRESQL)
        removed: dict[JobState, int] = {}
        while names:
            async with self._connection() as conn:
                cur = await conn.execute(statement, (before, *names, shared.PURGE_BATCH_ROWS))
                batch = shared.count_removed(removed, await cur.fetchall())
            if batch < shared.PURGE_BATCH_ROWS:
                break
        async with self._connection() as conn:
            await conn.execute(q.FORGET_IDLE_OWNERS)
        return removed


async def _get(conn: Connection, job_id: int) -> Job | None:
    cur = await conn.execute(f"{q.SELECT} WHERE id = %s", (job_id,))
    row = await cur.fetchone()
    return None if row is None else job_from_row(row)
