"""PostgreSQL: enqueues from K processes, one producer each, and where their commits wait.

    .venv/bin/python -m bench.tools.pg_producers [--processes 1,2,4] [--seconds 5] [--owner]

Each line printed is one run: the processes, the enqueues per second of all of them together,
the ratio to one process's rate of the same sitting, and the wait events seen
(:mod:`bench.workloads.pg_producers`). ``--owner`` gives each process's jobs an owner of its
own (without it, every job is ownerless).
"""

from __future__ import annotations

import argparse
import asyncio

from ..common import fresh_database
from ..workloads.pg_producers import run


async def main(counts: list[int], seconds: float, owner: bool) -> None:
    async with fresh_database("bench_pg_producers") as url:
        from quart_jobs import Jobs

        async with Jobs(url):  # the schema, before the children start
            pass
        one = None
        for k in counts:
            rate, waits = await asyncio.to_thread(run, url, k, seconds, owner)
            one = rate if k == 1 else one
            ratio = f" ({rate / one:.2f}x one process)" if one else ""
            print(f"{k} process(es): {rate:,.0f} enqueues/s{ratio}; waits: {waits}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--owner", action="store_true")
    args = parser.parse_args()
    asyncio.run(main([int(k) for k in args.processes.split(",")], args.seconds, args.owner))
