"""PostgreSQL: jobs shared by any number of processes on any number of machines.

Claiming locks its candidates with ``FOR UPDATE SKIP LOCKED``, so concurrent workers never
wait for each other nor get the same job; the order among the candidates is decided by
:mod:`quart_jobs.policy`, as in every backend (see :mod:`.postgres_fair`). Times are the
server's clock (seconds since the epoch in ``double precision`` columns): the backend measures
the server's clock against this process's at open and every 30 s and moves every time a caller
passes onto it (:mod:`.store_clock`), so processes whose clocks disagree still agree on which
jobs are due and which leases expired.

Enqueues of the process are group-committed (see :mod:`.postgres_io`) and send
``NOTIFY quart_jobs`` in their transaction; :meth:`PostgresBackend.subscribe` LISTENs on one
dedicated connection to wake workers at once instead of at their next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from ...errors import BackendUnavailable, ConfigurationError, QueueFull, SchemaTooNew
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
    Backend,
    BackendTransaction,
    ClaimScope,
    Heartbeat,
    Outcome,
    QueueLimits,
    job_from_row,
    purge_states,
    stats_from_rows,
)
from ..shared_sql import fair
from ..shared_sql import jobs as sql_shared
from ..shared_sql import operator as ops
from ..shared_sql import workers as live
from ..shared_sql.jobs import filter_sql, insert_params
from ..store_clock import OffsetRefresh, StoreClock, measure_offset
from . import statements as q
from .claim import claim as fair_claim
from .connections import (
    RETRYABLE,
    GroupCommit,
    Listener,
    pipelined_transaction,
    redact_url,
    translated,
    unavailable,
)
from .enqueue import EnqueueCall, KeyVanished, write_calls
from .statements import MIGRATIONS
from .transaction import PostgresTransaction
from .wakeup import FinishedCallback, FinishedListener, notify_finished

Connection = psycopg.AsyncConnection[TupleRow]
T = TypeVar("T")

#: The statements shared with SQLite (:mod:`.sql`), in PostgreSQL's dialect.
_PG = {
    name: sql_shared.render(getattr(sql_shared, name), "postgresql")
    for name in (
        "RECOVER_EXPIRED",
        "STATS_BY_STATE",
        "STATS_OLDEST",
        "STATS_BY_QUEUE",
        "SCHEMA_TABLE",
        "SCHEMA_VERSION",
        "SCHEMA_SET_VERSION",
        "RETRY",
        "CANCEL",
    )
}
_PG["NEXT_RUN_AT"] = sql_shared.NEXT_RUN_AT.format(**sql_shared.HINTS["postgresql"])

#: Seconds after which the server ends a session of ours idle inside a transaction (a client
#: cut off mid-transaction), releasing its locks.
IDLE_IN_TRANSACTION_SECONDS = 30
#: The channel enqueues NOTIFY; the payload is the schema, so schemas do not wake each other.
CHANNEL = "quart_jobs"


class PostgresBackend(Backend):
    """Jobs in PostgreSQL, through a pool of connections (psycopg 3).

    ``schema`` is where the tables live (created when missing; it becomes the connections'
    ``search_path``). ``min_size``/``max_size`` bound the pool; the LISTEN connection, opened
    on the first :meth:`subscribe`, is one more. ``connect_timeout`` bounds how long
    :meth:`open` waits for the server, ``pool_timeout`` how long an operation waits for a free
    connection. ``group_commit`` merges concurrent enqueues into transactions of up to
    ``max_batch`` jobs. ``wall`` is this process's clock, measured against the server's
    (tests inject a wrong one).
    """

    scheme = "postgresql"

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
        if not q.SCHEMA_NAME.fullmatch(schema):
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
        self._pool: psycopg_pool.AsyncConnectionPool[Connection] | None = None
        self._group: GroupCommit[EnqueueCall, list[EnqueueResult]] | None = (
            GroupCommit(self._flush_enqueues, max_batch=max_batch) if group_commit else None
        )
        self._listener = Listener(self._connect, CHANNEL, schema)
        self._finished = FinishedListener(self._connect, schema)
        self._wall = wall
        self._clock = StoreClock()
        self._refresh = OffsetRefresh()
        self._measuring: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresBackend:
        return cls(url, **options)

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        conn = await self._connect()
        try:
            with translated(self.url):
                async with conn.transaction():
                    await lock_migrations(conn)
                    await conn.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                            sql.Identifier(self.schema)
                        )
                    )
                    await migrate_component(conn, "quart_jobs", MIGRATIONS)
                    await migrate_component(conn, ops.COMPONENT, ops.POSTGRES_MIGRATIONS)
                    await migrate_component(conn, live.COMPONENT, live.MIGRATIONS)
                self._clock.measured(await measure_offset(conn, self._wall))
                self._refresh.due()  # measured: the next one in REFRESH_SECONDS
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
        self._pool = pool

    def _now(self, now: float) -> float:
        """``now`` on the server's clock; measures the offset again when it is due (in the
        background, on a pooled connection: a failed measurement keeps the last offset)."""
        if self._refresh.due() and (self._measuring is None or self._measuring.done()):
            self._measuring = asyncio.get_running_loop().create_task(self._remeasure())
        return self._clock.now(now)

    async def _remeasure(self) -> None:
        with contextlib.suppress(BackendUnavailable):
            async with self._connection() as conn:
                self._clock.measured(await measure_offset(conn, self._wall))

    async def _connect(self) -> Connection:
        """A connection of its own (not pooled), for migrations and LISTEN."""
        try:
            return await psycopg.AsyncConnection.connect(self.url, **self._kwargs)
        except psycopg.Error as exc:
            raise BackendUnavailable(
                f"cannot connect to PostgreSQL at {redact_url(self.url)}: "
                f"{' '.join(str(exc).split())}; check DATABASE_URL and that the server is up"
            ) from exc

    async def close(self) -> None:
        if self._measuring is not None:
            self._measuring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._measuring
        if self._group is not None:
            await self._group.wait_idle()
        await self._listener.stop()
        await self._finished.stop()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # --- escape hatch for the application's own tables ---------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A pooled connection inside a transaction (committed when the block ends without an
        exception). Connection failures become :class:`BackendUnavailable`; the application's
        own SQL errors (say ``UniqueViolation``) reach it unchanged."""
        with translated(self.url, everything=False):
            async with self._pool_or_fail().connection() as conn, conn.transaction():
                yield conn

    async def run_transaction(self, func: Callable[[BackendTransaction], T], now: float) -> T:
        loop = asyncio.get_running_loop()
        now = self._now(now)
        async with self.transaction() as conn:
            tx = PostgresTransaction(conn, loop, now, CHANNEL, self.schema, self._clock.offset)
            try:
                return await asyncio.to_thread(func, tx)
            finally:
                tx.closed = True

    def _pool_or_fail(self) -> psycopg_pool.AsyncConnectionPool[Connection]:
        if self._pool is None:
            raise BackendUnavailable("the PostgreSQL backend is not open; call open() first")
        return self._pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        """A pooled autocommit connection; every driver error becomes BackendUnavailable."""
        with translated(self.url):
            async with self._pool_or_fail().connection() as conn:
                yield conn

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
        call = EnqueueCall([insert_params(job, now, self._clock.offset) for job in jobs], limits)
        if not call.rows:
            return []
        if self._group is not None:
            return await self._group.submit(call, len(call.rows))
        (result,) = await self._write([call])
        if isinstance(result, BaseException):
            raise result
        return result

    async def _flush_enqueues(
        self, calls: list[EnqueueCall]
    ) -> list[list[EnqueueResult] | BaseException]:
        """One transaction for every waiting enqueue call; if the database rejects the batch
        (not a connection failure), each call is written alone so only the bad one fails."""
        try:
            return list(await self._write(calls, translate=len(calls) == 1))
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise unavailable(self.url, exc) from exc
        except psycopg.Error:
            alone: list[list[EnqueueResult] | BaseException] = []
            for call in calls:
                try:
                    alone.extend(await self._write([call]))
                except BackendUnavailable as error:
                    alone.append(error)
            return alone

    async def _write(
        self, calls: list[EnqueueCall], *, translate: bool = True
    ) -> list[list[EnqueueResult] | QueueFull]:
        """Write ``calls`` in one transaction, retrying a deadlock between same-key batches."""
        pool = self._pool_or_fail()
        attempt = 0
        while True:
            attempt += 1
            try:
                async with pool.connection() as conn:
                    return await write_calls(conn, calls, CHANNEL, self.schema)
            except KeyVanished:
                continue  # the job holding a key was purged meanwhile: insert it anew
            except psycopg.Error as exc:
                if isinstance(exc, RETRYABLE) and attempt < 4:
                    await asyncio.sleep(0.01 * attempt)
                    continue
                if translate:
                    raise unavailable(self.url, exc) from exc
                raise

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

    async def finish_and_claim(
        self,
        outcomes: Sequence[Outcome],
        worker: str,
        limit: int,
        now: float,
        lease_seconds: float,
        scope: ClaimScope = ANY_SCOPE,
    ) -> tuple[list[bool], list[Job]]:
        """The outcomes and the claim in one transaction, pipelined: the outcomes, the due
        jobs, the locked tier clocks and the heads go in one round trip, the claim's writes
        and the COMMIT in a second one (more only to tag due jobs or count concurrency keys)."""
        if not outcomes and limit <= 0:
            return [], []
        now = self._now(now)
        offset = self._clock.offset
        # Outcomes that end their jobs go in one statement (one per job otherwise).
        ends = [i for i, o in enumerate(outcomes) if _plain_end(o)]
        if len({outcomes[i].lease.job_id for i in ends}) < len(ends) or len(ends) < 2:
            ends = []
        end_set = set(ends)
        one_by_one = [o for i, o in enumerate(outcomes) if i not in end_set]
        statements = [sql_shared.finish_statement(o, now, "postgresql", offset) for o in one_by_one]
        ended = [o.lease.job_id for o in outcomes if o.ends_job]
        async with self._connection() as conn:
            async with pipelined_transaction(conn):
                ends_cur = (
                    await conn.execute(
                        q.FINISH_ENDS, _ends_params([outcomes[i] for i in ends], now)
                    )
                    if ends
                    else None
                )
                cursors = [await conn.execute(query, params) for query, params in statements]
                if ended:
                    await notify_finished(conn, self.schema, ended)
                read = (
                    await fair_claim(conn, worker, limit, now, lease_seconds, scope)
                    if limit > 0
                    else None
                )
            claimed = [] if read is None else await read()
            still = set() if ends_cur is None else {int(r[0]) for r in await ends_cur.fetchall()}
            rest = iter(cursors)
            held = [
                o.lease.job_id in still if i in end_set else next(rest).rowcount == 1
                for i, o in enumerate(outcomes)
            ]
            return held, claimed

    async def heartbeat(
        self, leases: Sequence[Lease], now: float, lease_seconds: float
    ) -> list[Heartbeat]:
        if not leases:
            return []
        now = self._now(now)
        rows: list[tuple[Any, ...]] = []
        async with self._connection() as conn:
            for start in range(0, len(leases), sql_shared.LEASE_CHUNK):
                chunk = leases[start : start + sql_shared.LEASE_CHUNK]
                statement = sql_shared.heartbeat_statement(len(chunk), "postgresql")
                pairs = [v for x in chunk for v in (x.job_id, x.token)]
                cur = await conn.execute(statement, (now + lease_seconds, *pairs))
                rows += await cur.fetchall()
        return sql_shared.heartbeats(rows, leases)

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        held, _ = await self.finish_and_claim(outcomes, "", 0, now, 0.0)
        return held

    async def recover_expired(self, now: float) -> int:
        now = self._now(now)
        async with self._connection() as conn:
            cur = await conn.execute(_PG["RECOVER_EXPIRED"], (now, now))
            if cur.rowcount:
                await notify_finished(conn, self.schema, None)  # some may have failed for good
            return cur.rowcount

    async def cancel(self, job_id: int, now: float, *, running: bool = True) -> Job | None:
        now = self._now(now)
        async with self._connection() as conn:
            cur = await conn.execute(_PG["CANCEL"], (now, job_id, running))
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
            cur = await conn.execute(_PG["RETRY"], (now, job_id))
            row = await cur.fetchone()
            if row is not None:
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.schema))
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

    async def list_jobs(self, flt: JobFilter) -> list[Job]:
        where, params = filter_sql(flt, "%s")
        async with self._connection() as conn:
            cur = await conn.execute(
                f"{q.SELECT} {where} ORDER BY id DESC LIMIT %s", (*params, flt.limit)
            )
            return [job_from_row(r) for r in await cur.fetchall()]

    async def stats(self) -> Stats:
        async with self._connection() as conn, conn.pipeline():
            cursors = [
                await conn.execute(_PG[name])
                for name in ("STATS_BY_STATE", "STATS_OLDEST", "STATS_BY_QUEUE")
            ]
            rows = [await cur.fetchall() for cur in cursors]
        return stats_from_rows(*rows)

    async def ready_tasks(self) -> dict[tuple[str, str], int]:
        async with self._connection() as conn:
            cur = await conn.execute(fair.READY_TASKS.format(hint=""))
            return {(str(q), str(t)): int(n) for q, t, n in await cur.fetchall()}

    async def next_run_at(self) -> float | None:
        async with self._connection() as conn:
            cur = await conn.execute(_PG["NEXT_RUN_AT"])
            row = await cur.fetchone()
        return None if row is None else self._clock.local(row[0])

    async def queue_gauges(self) -> Stats:
        async with self._connection() as conn:
            queued = await (await conn.execute(ops.QUEUED_GAUGES["postgresql"])).fetchall()
            running = await (await conn.execute(ops.RUNNING_GAUGES["postgresql"])).fetchall()
            firsts = [row[2] for row in queued]
            cur = await conn.execute(
                "SELECT id, enqueued_at FROM qj_jobs WHERE id = ANY(%s)", (firsts,)
            )
            enqueued = {int(i): float(t) for i, t in await cur.fetchall()}
        return ops.gauges_from_rows(queued, running, enqueued)

    async def probe_write(self, now: float) -> None:
        pad = secrets.token_hex(ops.PROBE_PAD // 2)
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_OPS["probe"], (self._clock.at(now), pad))

    async def create_session(self, session_id: str, expires_at: float, now: float) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_OPS["session_purge"], (self._clock.at(now),))
            await conn.execute(_OPS["session_create"], (session_id, self._clock.at(expires_at)))

    async def session_active(self, session_id: str, now: float) -> bool:
        async with self._connection() as conn:
            cur = await conn.execute(_OPS["session_active"], (session_id, self._clock.at(now)))
            return await cur.fetchone() is not None

    async def end_session(self, session_id: str) -> None:
        async with self._connection() as conn:
            await conn.execute(_OPS["session_end"], (session_id,))

    async def ready_kinds(self) -> set[tuple[str, int, str]]:
        scan = live.skip_scan()
        async with self._connection() as conn:
            try:
                name, params = next(scan)
                while True:
                    row = await (await conn.execute(_READY[name], params)).fetchone()
                    name, params = scan.send(row)
            except StopIteration as done:
                kinds: set[tuple[str, int, str]] = done.value
                return kinds

    async def ready_count(self, queue: str, priority: int, task: str) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(_READY["count"], (queue, priority, task))
            row = await cur.fetchone()
        return 0 if row is None else int(row[0])

    async def register_worker(self, worker: WorkerRecord, now: float) -> None:
        offset = self._clock.offset
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_LIVE["forget"], (self._clock.at(now) - live.FORGET_AFTER,))
            await conn.execute(_LIVE["upsert"], live.upsert_params(worker, offset))

    async def remove_worker(self, name: str) -> None:
        async with self._connection() as conn:
            await conn.execute(_LIVE["remove"], (name,))

    async def live_workers(self, now: float) -> list[WorkerRecord]:
        offset = self._clock.offset
        async with self._connection() as conn:
            cur = await conn.execute(_LIVE["live"], (now + offset,))
            return [live.worker_from_row(r, offset) for r in await cur.fetchall()]

    async def finished_counts(
        self, since: float, bucket_seconds: float
    ) -> dict[tuple[int, JobState], int]:
        since = self._clock.at(since)
        async with self._connection() as conn:
            cur = await conn.execute(_FINISHED_COUNTS, (since, bucket_seconds, since))
            rows = await cur.fetchall()
        return {(int(bucket), JobState(state)): int(n) for bucket, state, n in rows}

    async def purge(
        self, before: float, states: Collection[JobState] = FINISHED_STATES
    ) -> dict[JobState, int]:
        names = purge_states(states)
        before = self._clock.at(before)
        statement = sql_shared.purge_statement(len(names), "postgresql")
        removed: dict[JobState, int] = {}
        while names:
            async with self._connection() as conn:
                cur = await conn.execute(statement, (before, *names, sql_shared.PURGE_BATCH_ROWS))
                batch = sql_shared.count_removed(removed, await cur.fetchall())
            if batch < sql_shared.PURGE_BATCH_ROWS:
                break
        async with self._connection() as conn:
            await conn.execute(fair.FORGET_IDLE_OWNERS)
        return removed


_FINISHED_COUNTS = sql_shared.finished_counts_statement("postgresql")
_OPS = ops.statements("%s")
_LIVE = live.statements("postgresql")
_READY = live.ready_statements("postgresql")


def _plain_end(o: Outcome) -> bool:
    """Whether ``o`` is recorded by ``FINISH_END`` (see :func:`.sql.finish_statement`)."""
    if o.state is JobState.QUEUED:
        return False
    return not (o.state is JobState.FAILED and o.run_at is not None)


def _ends_params(outcomes: Sequence[Outcome], now: float) -> tuple[Any, ...]:
    """The parameters of :data:`.postgres_sql.FINISH_ENDS`."""
    return (
        now,
        [o.lease.job_id for o in outcomes],
        [o.lease.token for o in outcomes],
        [o.state.value for o in outcomes],
        [o.result for o in outcomes],
        [o.error for o in outcomes],
        [o.traceback for o in outcomes],
    )


async def lock_migrations(conn: Connection) -> None:
    """Serialize migrations across processes until the caller's transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (q.MIGRATION_LOCK,))


async def migrate_component(conn: Connection, component: str, scripts: Sequence[str]) -> None:
    """Apply the scripts of ``component`` the database lacks, inside the caller's transaction
    (under an advisory lock, so processes starting together apply each script once).

    Applications keep their tables beside the jobs under a component name of their own.
    """
    await lock_migrations(conn)
    await conn.execute(_PG["SCHEMA_TABLE"])
    cur = await conn.execute(_PG["SCHEMA_VERSION"], (component,))
    row = await cur.fetchone()
    current = 0 if row is None else int(row[0])
    if current > len(scripts):
        raise SchemaTooNew(
            f"the database's {component} schema is version {current}, newer than this code "
            f"knows ({len(scripts)}); upgrade quart-jobs or point DATABASE_URL at another database"
        )
    for script in scripts[current:]:
        await conn.execute(script)
    await conn.execute(_PG["SCHEMA_SET_VERSION"], (component, len(scripts)))


async def _get(conn: Connection, job_id: int) -> Job | None:
    cur = await conn.execute(f"{q.SELECT} WHERE id = %s", (job_id,))
    row = await cur.fetchone()
    return None if row is None else job_from_row(row)
