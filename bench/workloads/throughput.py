"""W1 throughput: no-op jobs, half VIP: enqueue rate, drain rate, end-to-end.

Every system runs the same three phases per round:

* **enqueue**: one producer enqueues N jobs one call at a time (each call returns once the job is
  stored, as a request handler would), no worker running;
* **drain**: a worker starts against that backlog of N; the clock stops when the last job is done;
* **e2e**: the worker is running first, the producer enqueues N more; the clock runs from the
  first enqueue to the last completion.

quart-jobs counts a job done when its ``succeeded`` outcome is committed (the event hook); peers
count a job done when its function ran (their bookkeeping write may still be in flight).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common import (
    Config,
    Countdown,
    Measurement,
    Phases,
    fresh_database,
    not_run,
    one_line,
    pg_available,
)
from ..pg_cost import server_cost
from .in_memory import priority_queue, quart_background
from .peers_postgres import (
    PGQUEUER_BATCH,
    oban,
    oban_missing,
    pgqueuer,
    pgqueuer_missing,
    procrastinate,
    saq,
)
from .peers_sqlite import HUEY_WORKERS, PERSIST_QUEUE_THREADS, huey, persist_queue
from .w1_shape import (
    PEER_ASYNC_CONCURRENCY,
    PG_PEER_CONCURRENCY,
    QJ_CONCURRENCY,
    VIP_EVERY,
    async_phases,
    database_of,
    unlink_sqlite,
)

WORKLOAD = "W1 throughput"
QJ_PG_PEER_SHAPE = f"quart-jobs PostgreSQL, concurrency {PG_PEER_CONCURRENCY}"
PGQUEUER = "pgqueuer (PostgreSQL)"
OBAN = "oban-py (PostgreSQL)"
PRODUCERS = 100
ROUND_BUDGET = 300.0  # one round of one system; past it the row is "n/a" (a runaway peer)
ROUND_BUDGET_QUICK = 60.0


async def qj_noop() -> None:
    """The quart-jobs no-op task (module level: the registry needs an importable name)."""


# --- quart-jobs ------------------------------------------------------------------------------


async def _qj_phases(jobs: Any, n: int, concurrency: int, producers: int = 1) -> Phases:
    task = jobs.task(qj_noop)
    vip = jobs.options(priority="vip")
    regular = jobs.options()
    done: list[Countdown] = []

    def hook(event: str, _job: Any, _elapsed: float | None) -> None:
        if event == "succeeded":
            done[0].hit_in_loop()

    jobs.event_hooks.append(hook)

    async def producer(k: int) -> None:
        for i in range(k, n, producers):
            await (vip if i % VIP_EVERY else regular).enqueue(task)

    async def produce() -> None:
        if producers == 1:
            await producer(0)
        else:
            await asyncio.gather(*(producer(k) for k in range(producers)))

    worker = jobs.run_worker(concurrency=concurrency)
    return await async_phases(n, done, produce, worker)


async def qj_sqlite(cfg: Config, n: int, synchronous: str) -> Phases:
    from quart_jobs import Jobs

    path = cfg.workdir / f"qj-{synchronous}-{uuid.uuid4().hex[:8]}.sqlite3"
    jobs = Jobs(f"sqlite:///{path}", backend_options={"synchronous": synchronous})
    async with jobs:
        phases = await _qj_phases(jobs, n, QJ_CONCURRENCY)
    unlink_sqlite(path)
    return phases


async def qj_sqlite_producers(cfg: Config, n: int) -> Phases:
    """PRODUCERS concurrent coroutines enqueue (group commit at work), FULL."""
    from quart_jobs import Jobs

    path = cfg.workdir / f"qj-producers-{uuid.uuid4().hex[:8]}.sqlite3"
    jobs = Jobs(f"sqlite:///{path}")
    async with jobs:
        phases = await _qj_phases(jobs, n, QJ_CONCURRENCY, producers=PRODUCERS)
    unlink_sqlite(path)
    return phases


def postgres_backend_missing() -> str | None:
    """``None`` when quart-jobs has a PostgreSQL backend to measure, else why not."""
    try:
        from quart_jobs.backends.postgres import backend  # noqa: F401
    except ImportError as exc:
        return f"quart_jobs.backends.postgres not importable ({one_line(exc)})"
    return pg_available()


async def qj_postgres(
    cfg: Config, n: int, producers: int = 1, concurrency: int = QJ_CONCURRENCY
) -> Phases:
    """quart-jobs on a fresh database, with the server's cost per job (from opening ``Jobs``
    to closing it: its connections' exits flush their statistics)."""
    from quart_jobs import Jobs

    async with (
        fresh_database("bench_quart_jobs") as url,
        server_cost(database_of(url)) as probe,
    ):
        jobs = Jobs(url)
        async with jobs:
            phases = await _qj_phases(jobs, n, concurrency, producers)
    phases.server = probe.result
    return phases


# --- physical references: raw SQLite commits --------------------------------------------------

RAW_SQLITE_1 = "raw SQLite 1-row FULL commits"
RAW_SQLITE_BATCH = "raw SQLite 1,000-row batch commits"
RAW_SQLITE_BATCH_ROWS = 1000
RAW_SQLITE_TABLE = (
    "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, "
    "args TEXT NOT NULL, kwargs TEXT NOT NULL, priority INTEGER NOT NULL, state TEXT NOT NULL, "
    "max_attempts INTEGER NOT NULL, enqueued_at REAL NOT NULL, run_at REAL NOT NULL, "
    "queue TEXT NOT NULL, tag REAL)"
)
RAW_SQLITE_INSERT = (
    "INSERT INTO jobs (task, args, kwargs, priority, state, max_attempts, enqueued_at, run_at, "
    "queue, tag) VALUES (?, '[]', '{}', ?, 'queued', 3, ?, ?, 'default', ?)"
)


def _raw_sqlite_round(path: Path, n: int, batch: int) -> float:
    """Seconds to commit ``n`` job-sized rows, ``batch`` rows per transaction, on a plain
    ``sqlite3`` connection in WAL mode with ``synchronous=FULL`` (one fsync per commit)."""
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(RAW_SQLITE_TABLE)
        task = "bench.workloads.throughput:qj_noop"
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            now = time.time()
            rows = [
                (task, 0 if i % VIP_EVERY else 10, now, now, float(i))
                for i in range(start, min(n, start + batch))
            ]
            conn.execute("BEGIN")
            if len(rows) == 1:
                conn.execute(RAW_SQLITE_INSERT, rows[0])
            else:
                conn.executemany(RAW_SQLITE_INSERT, rows)
            conn.execute("COMMIT")
        return time.perf_counter() - t0
    finally:
        conn.close()


async def raw_sqlite(cfg: Config, n: int, batch: int = 1) -> Phases:
    """The floor under one awaited enqueue (``batch=1``) and under a group commit (``batch``
    rows per commit), in the directory of the quart-jobs files."""
    path = cfg.workdir / f"raw-{batch}-{uuid.uuid4().hex[:8]}.sqlite3"
    try:
        return Phases(await asyncio.to_thread(_raw_sqlite_round, path, n, batch), None, None)
    finally:
        unlink_sqlite(path)


# --- physical reference: raw PostgreSQL 1-row inserts ----------------------------------------

RAW_PG = "raw PostgreSQL 1-row inserts (autocommit)"
RAW_PG_TABLE = """
CREATE SCHEMA bench_raw;
CREATE TABLE bench_raw.jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task text NOT NULL, args text NOT NULL, kwargs text NOT NULL, priority integer NOT NULL,
    state text NOT NULL, max_attempts integer NOT NULL,
    enqueued_at double precision NOT NULL, run_at double precision NOT NULL, queue text NOT NULL
)
"""
RAW_PG_INSERT = (
    "INSERT INTO bench_raw.jobs (task, args, kwargs, priority, state, max_attempts, "
    "enqueued_at, run_at, queue) VALUES (%s, '[]', '{}', %s, 'queued', 3, %s, %s, 'default')"
)


async def raw_postgres(cfg: Config, n: int) -> Phases:
    """The floor under one awaited enqueue: an async psycopg connection in autocommit, one
    INSERT of a job-sized row (a regular, WAL-logged table) per iteration, each one a commit
    (the server's default ``synchronous_commit=on``), in a database of the same server the
    quart-jobs rows use."""
    import psycopg

    async with (
        fresh_database("bench_quart_jobs") as url,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
    ):
        await conn.execute(RAW_PG_TABLE)
        task = "bench.workloads.throughput:qj_noop"
        t0 = time.perf_counter()
        for i in range(n):
            now = time.time()
            await conn.execute(RAW_PG_INSERT, (task, 0 if i % VIP_EVERY else 10, now, now))
        return Phases(time.perf_counter() - t0, None, None)


# --- the workload ----------------------------------------------------------------------------


@dataclass
class System:
    name: str
    run: Callable[[Config, int], Awaitable[Phases]]
    full_n: int
    note: str
    unavailable: Callable[[], str | None] = lambda: None
    peer: bool = False  # another library (left out when ``Config.peers`` is false)


def systems() -> list[System]:
    return [
        System(
            "asyncio.PriorityQueue (ceiling)",
            priority_queue,
            20_000,
            f"in memory, {QJ_CONCURRENCY} worker tasks, seq tie-break",
        ),
        System(
            "Quart add_background_task",
            quart_background,
            20_000,
            "in memory, unbounded, no priority; starts at once",
        ),
        System(
            "quart-jobs SQLite FULL",
            lambda c, n: qj_sqlite(c, n, "FULL"),
            20_000,
            f"durable (fsync per commit), concurrency {QJ_CONCURRENCY}",
        ),
        # The physical references of the enqueue (rows/s, enqueue only): what the disk allows.
        System(
            RAW_SQLITE_1,
            raw_sqlite,
            5_000,
            "plain sqlite3, WAL, synchronous=FULL, one INSERT + COMMIT per row; enqueue only",
        ),
        System(
            RAW_SQLITE_BATCH,
            lambda c, n: raw_sqlite(c, n, RAW_SQLITE_BATCH_ROWS),
            200_000,
            f"as above, {RAW_SQLITE_BATCH_ROWS:,} rows per COMMIT (executemany); enqueue only",
        ),
        System(
            "quart-jobs SQLite NORMAL",
            lambda c, n: qj_sqlite(c, n, "NORMAL"),
            20_000,
            f"WAL synchronous=NORMAL, concurrency {QJ_CONCURRENCY}",
        ),
        System(
            f"quart-jobs SQLite FULL, {PRODUCERS} producers",
            qj_sqlite_producers,
            20_000,
            "group commit; drain as above",
        ),
        System(
            "quart-jobs PostgreSQL",
            qj_postgres,
            20_000,
            f"one process, concurrency {QJ_CONCURRENCY}",
            postgres_backend_missing,
        ),
        # The physical reference of the one-producer enqueue.
        System(
            RAW_PG,
            raw_postgres,
            20_000,
            "async psycopg, autocommit, one INSERT (one commit) per row; enqueue only",
            pg_available,
        ),
        System(
            QJ_PG_PEER_SHAPE,
            lambda c, n: qj_postgres(c, n, concurrency=PG_PEER_CONCURRENCY),
            20_000,
            f"one process, concurrency {PG_PEER_CONCURRENCY} (pgqueuer's and oban-py's shape)",
            postgres_backend_missing,
        ),
        System(
            f"quart-jobs PostgreSQL, {PRODUCERS} producers",
            lambda c, n: qj_postgres(c, n, PRODUCERS),
            20_000,
            "group commit; drain as above",
            postgres_backend_missing,
        ),
        System(
            "Huey SqliteHuey",
            huey,
            4_000,
            f"Consumer, {HUEY_WORKERS} threads; default fsync",
            peer=True,
        ),
        System(
            "persist-queue SQLiteAckQueue",
            persist_queue,
            4_000,
            f"{PERSIST_QUEUE_THREADS} consumer thread, get+ack; FIFO (no priority)",
            peer=True,
        ),
        System(
            "procrastinate (PostgreSQL)",
            procrastinate,
            1_500,
            f"worker concurrency {PEER_ASYNC_CONCURRENCY}",
            pg_available,
            peer=True,
        ),
        System(
            "SAQ (PostgreSQL)",
            saq,
            1_500,
            f"worker concurrency {PEER_ASYNC_CONCURRENCY}",
            pg_available,
            peer=True,
        ),
        System(
            PGQUEUER,
            pgqueuer,
            20_000,
            f"asyncpg; QueueManager: {PG_PEER_CONCURRENCY} at a time, batches of {PGQUEUER_BATCH}",
            pgqueuer_missing,
            peer=True,
        ),
        System(
            OBAN,
            oban,
            20_000,
            f"Python 3.12 child process; queue limit {PG_PEER_CONCURRENCY}",
            oban_missing,
            peer=True,
        ),
    ]


METRICS = (("enqueue", "enqueue"), ("drain", "drain"), ("e2e", "end-to-end"))
#: The server's cost per job (CPU µs, WAL bytes, commits) of the rows that measure it.
COST_UNITS = {"server CPU us/job": "us", "WAL bytes/job": "bytes", "commits/job": "commits"}


def _cost_text(phases: Phases, n: int) -> str:
    if phases.server is None:
        return ""
    cost = phases.server.per_job(2 * n)
    return (
        f"; server per job {cost['server CPU us/job']:.0f} us CPU, "
        f"{cost['WAL bytes/job']:,.0f} B WAL, {cost['commits/job']:.2f} commits"
    )


async def run(cfg: Config, log: Callable[[str], None]) -> list[Measurement]:
    rows: dict[tuple[str, str], Measurement] = {}
    failed: dict[str, str] = {}
    chosen = [s for s in systems() if cfg.peers or not s.peer]
    for s in chosen:
        reason = s.unavailable()
        if reason:
            failed[s.name] = reason
    for rnd in range(cfg.rounds):
        for s in chosen:
            if s.name in failed:
                continue
            n = cfg.size(s.full_n)
            t0 = time.perf_counter()
            budget = ROUND_BUDGET_QUICK if cfg.quick or cfg.smoke else ROUND_BUDGET
            try:
                phases = await asyncio.wait_for(s.run(cfg, n), budget)
            except TimeoutError:
                failed[s.name] = f"a round of {n:,} jobs did not finish within {budget:.0f}s"
                log(f"  {s.name}: {failed[s.name]}")
                continue
            except Exception as exc:
                failed[s.name] = f"failed: {one_line(exc)}"
                log(f"  {s.name}: {failed[s.name]}")
                continue
            for attr, label in METRICS:
                seconds = getattr(phases, attr)
                if seconds is None:
                    continue
                row = rows.get((s.name, attr))
                if row is None:
                    row = rows[(s.name, attr)] = Measurement(
                        WORKLOAD, s.name, f"{label} jobs/s", "jobs/s", n=n, note=s.note
                    )
                row.values.append(n / seconds)
            if phases.server is not None:
                for metric, value in phases.server.per_job(2 * n).items():
                    row = rows.get((s.name, metric))
                    if row is None:
                        row = rows[(s.name, metric)] = Measurement(
                            WORKLOAD,
                            s.name,
                            metric,
                            COST_UNITS[metric],
                            n=2 * n,
                            note="the server, per job over the three phases",
                            higher_is_better=False,
                        )
                    row.values.append(value)
            log(
                f"  round {rnd + 1}/{cfg.rounds} {s.name} (n={n}): "
                + ", ".join(
                    f"{label} {n / getattr(phases, attr):,.0f}/s"
                    for attr, label in METRICS
                    if getattr(phases, attr)
                )
                + _cost_text(phases, n)
                + f"  [{time.perf_counter() - t0:.1f}s]"
            )
    out: list[Measurement] = []
    for s in chosen:
        if s.name in failed:
            out.append(not_run(WORKLOAD, s.name, "end-to-end jobs/s", failed[s.name], "jobs/s"))
            # keep the partial rows of a system that failed in a later round out of the table
            continue
        keys = [attr for attr, _ in METRICS] + list(COST_UNITS)
        out.extend(rows[(s.name, key)] for key in keys if (s.name, key) in rows)
    return out
