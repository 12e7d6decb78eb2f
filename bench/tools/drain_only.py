"""W1's drain phase alone, for A/B runs and profilers: one JSON line per run.

A backlog of N no-op jobs (every second one VIP, enqueued with ``enqueue_many``), then
``jobs.run_worker(concurrency=32)`` until the last ``succeeded`` event; the ceiling is the median
of three ``asyncio.PriorityQueue`` drains of N in the same process just before::

    .venv/bin/python -m bench.tools.drain_only sqlite 20000 --label B
    PYTHONPATH=/other/src .venv/bin/python -m bench.tools.drain_only sqlite 20000 --label A
    .venv/bin/python -m bench.tools.drain_only postgres 5000  # a database of its own
    .venv/bin/python -m bench.tools.drain_only sqlite 40000 --prepared var/drain-40000.sqlite3
    py-spy record --threads --idle -r 250 --format raw -o var/drain.txt -- \\
        .venv/bin/python -m bench.tools.drain_only sqlite 40000 --prepared var/drain-40000.sqlite3

SQLite runs drain a copy of a prepared file: ``--prepared PATH`` keeps it (made by the first run
that names it), so that a profiler of the next runs sees the drain and not the enqueue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..common import Config, Countdown, fresh_database
from ..pg_cost import server_cost
from ..workloads.in_memory import priority_queue
from ..workloads.throughput import qj_noop
from ..workloads.w1_shape import QJ_CONCURRENCY, database_of


async def _fill(jobs: Any, n: int) -> None:
    task = jobs.task(qj_noop)
    vip = jobs.options(priority="vip")
    for _ in range(0, n, 500):
        calls: list[tuple[Any, tuple[()], dict[str, Any]]] = [(task, (), {}) for _ in range(250)]
        await jobs.enqueue_many(calls, vip.settings)
        await jobs.enqueue_many(calls)


async def _drain(jobs: Any, n: int, concurrency: int) -> tuple[float, float, float]:
    """Jobs per second, CPU microseconds per job of all threads and of the event loop's."""
    jobs.task(qj_noop)
    done = Countdown(n)

    def hook(event: str, _job: Any, _elapsed: float | None) -> None:
        if event == "succeeded":
            done.hit_in_loop()

    jobs.event_hooks.append(hook)
    t0, c0, l0 = time.perf_counter(), time.process_time(), time.thread_time()
    async with jobs.run_worker(concurrency=concurrency):
        await done.wait(300)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        loop = time.thread_time() - l0
    return n / seconds, 1e6 * cpu / n, 1e6 * loop / n


async def main(
    backend: str, n: int, label: str, prepared: Path | None, concurrency: int = QJ_CONCURRENCY
) -> dict[str, Any]:
    from quart_jobs import Jobs

    with tempfile.TemporaryDirectory(prefix="quart-jobs-drain-") as tmp:
        cfg = Config(rounds=1, workdir=Path(tmp))
        ceilings = sorted([n / ((await priority_queue(cfg, n)).drain or 1) for _ in range(3)])
        server: float | None = None
        if backend == "sqlite":
            prepared = prepared or Path(tmp) / "prepared.sqlite3"
            if not prepared.exists():
                async with Jobs(f"sqlite:///{prepared}") as jobs:
                    await _fill(jobs, n)
            shutil.copy(prepared, Path(tmp) / "drain.sqlite3")
            async with Jobs(f"sqlite:///{tmp}/drain.sqlite3") as jobs:
                rate, cpu, loop = await _drain(jobs, n, concurrency)
        else:
            async with fresh_database(f"bench_drain_{os.getpid()}") as url, Jobs(url) as jobs:
                await _fill(jobs, n)
                async with server_cost(database_of(url)) as probe:
                    rate, cpu, loop = await _drain(jobs, n, concurrency)
                assert probe.result is not None
                server = 1e6 * probe.result.cpu_seconds / n
    return {
        "label": label,
        "backend": backend,
        "n": n,
        "concurrency": concurrency,
        "drain": rate,
        "cpu_us_per_job": cpu,
        "loop_cpu_us_per_job": loop,  # the event loop's thread; the rest is the store's threads
        "server_cpu_us_per_job": server,  # PostgreSQL's backends (None on SQLite)
        "ceiling_drain": ceilings[1],
        "ratio": rate / ceilings[1],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", choices=("sqlite", "postgres"))
    parser.add_argument("n", type=int, nargs="?", default=20_000)
    parser.add_argument("--label", default="")
    parser.add_argument("--prepared", type=Path, help="SQLite: the backlog file to keep and reuse")
    parser.add_argument(
        "--concurrency", type=int, default=QJ_CONCURRENCY, help="the worker's (10: the PG peers')"
    )
    args = parser.parse_args()
    result = asyncio.run(main(args.backend, args.n, args.label, args.prepared, args.concurrency))
    print(json.dumps(result), flush=True)
