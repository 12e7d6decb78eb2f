"""PostgreSQL: one producer's awaited enqueue against raw 1-row inserts, interleaved
in one process (chunks of each in turn), so a load change on a shared machine hits both alike.

    PYTHONPATH=<src> python -m bench.tools.pg_enqueue_vs_raw [--chunks 20] [--chunk 100]

Prints both rates and their ratio (the goal: enqueue >= 0.7x raw).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from ..common import fresh_database
from ..workloads import throughput as w1


async def qj_noop() -> None:
    """The task enqueued (never run here)."""


async def main(chunks: int, chunk: int) -> None:
    import psycopg

    from quart_jobs import Jobs

    async with fresh_database("bench_pg_enqueue_vs_raw") as url:
        jobs = Jobs(url)
        task = jobs.task(qj_noop)
        vip, regular = jobs.options(priority="vip"), jobs.options()
        async with jobs, await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(w1.RAW_PG_TABLE)
            for i in range(20):  # warm both (prepared statements)
                await (vip if i % 2 else regular).enqueue(task)
                await conn.execute(w1.RAW_PG_INSERT, ("t", 0, time.time(), time.time()))
            ours = raw = 0.0
            for _ in range(chunks):
                t0 = time.perf_counter()
                for i in range(chunk):
                    now = time.time()
                    await conn.execute(w1.RAW_PG_INSERT, ("t", 0 if i % 2 else 10, now, now))
                t1 = time.perf_counter()
                for i in range(chunk):
                    await (vip if i % 2 else regular).enqueue(task)
                t2 = time.perf_counter()
                raw += t1 - t0
                ours += t2 - t1
    n = chunks * chunk
    print(
        f"raw 1-row inserts {n / raw:,.0f}/s, quart-jobs enqueue {n / ours:,.0f}/s: "
        f"{raw / ours:.2f}x ({chunks} chunks of {chunk} each, interleaved)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.chunks, args.chunk))
