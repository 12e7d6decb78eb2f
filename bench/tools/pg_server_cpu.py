"""PostgreSQL: CPU per enqueue, client and server (the server's backend process), layer by
layer.

    python -m bench.tools.pg_server_cpu [--n 1500]

The raw and direct rows on a connection of their own (autocommit), the others on the pool's
one connection (``min_size=max_size=1``); the server's CPU is read from
``/proc/<backend pid>/stat`` (the server runs on this machine), the client's from
``time.process_time``. Rows: the raw 1-row insert, the enqueue statement sent directly, the
backend's ``enqueue``, and ``Jobs`` on top.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable

from ..common import PG_ADMIN_URL
from ..pg_cost import backend_cpu_seconds as _cpu

RAW_TABLE = (
    "CREATE TABLE raw (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, task text, "
    "args text, kwargs text, priority int, state text, max_attempts int, "
    "enqueued_at float8, run_at float8, queue text)"
)
RAW_INSERT = (
    "INSERT INTO raw (task, args, kwargs, priority, state, max_attempts, enqueued_at, run_at, "
    "queue) VALUES (%s, '[]', '{}', %s, 'queued', 3, %s, %s, 'default')"
)


async def _measure(label: str, pid: int, n: int, act: Callable[[], Awaitable[None]]) -> None:
    for _ in range(20):
        await act()
    s0, c0, t0 = _cpu(pid), time.process_time(), time.perf_counter()
    for _ in range(n):
        await act()
    dt = time.perf_counter() - t0
    print(
        f"{label}: {n / dt:,.0f}/s, client {1e6 * (time.process_time() - c0) / n:.0f} us, "
        f"server {1e6 * (_cpu(pid) - s0) / n:.0f} us per call",
        flush=True,
    )


async def qj_noop() -> None:
    """The task enqueued (never run here)."""


async def main(n: int) -> None:
    import psycopg

    from quart_jobs import Jobs
    from quart_jobs.backends.postgres import statements as q
    from quart_jobs.backends.postgres.backend import PostgresBackend
    from quart_jobs.backends.shared_sql.jobs import insert_params
    from quart_jobs.models import NewJob

    schema = "bench_server_cpu_" + os.urandom(3).hex()
    jobs = Jobs(PG_ADMIN_URL, backend_options={"schema": schema, "min_size": 1, "max_size": 1})
    task = jobs.task(qj_noop)
    async with jobs:
        backend = jobs._store  # a measuring tool reaches the store itself
        assert isinstance(backend, PostgresBackend)
        async with backend.transaction() as conn:
            pid = conn.info.backend_pid  # the pool's one connection
        own = await psycopg.AsyncConnection.connect(
            PG_ADMIN_URL, autocommit=True, options=f"-csearch_path={schema}"
        )
        await own.execute(RAW_TABLE)
        one = [NewJob(task="t", priority=10)]

        async def raw() -> None:
            await own.execute(RAW_INSERT, ("t", 10, 1.0, 1.0))

        async def statement() -> None:
            row = insert_params(one[0], time.time())
            cur = await own.execute(q.INSERT_ONE, q.insert_one(row, "quart_jobs", schema))
            await cur.fetchall()

        async def enqueue() -> None:
            await backend.enqueue(one, time.time())

        regular = jobs.options()

        async def via_jobs() -> None:
            await regular.enqueue(task)

        for _ in range(2):
            await _measure("raw 1-row insert", own.info.backend_pid, n, raw)
            await _measure("INSERT_ONE sent directly", own.info.backend_pid, n, statement)
            await _measure("PostgresBackend.enqueue", pid, n, enqueue)
            await _measure("Jobs enqueue", pid, n, via_jobs)
        await own.execute(f"DROP SCHEMA {schema} CASCADE")
        await own.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1500)
    asyncio.run(main(parser.parse_args().n))
