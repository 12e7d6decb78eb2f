"""W4 scale: quart-jobs on PostgreSQL drained by 1, 2 and 4 worker processes, and enqueued
by 1, 2 and 4 producing processes.

Drain: a backlog of N no-op jobs (half VIP) is enqueued first (not timed); then K worker
processes (``python -m bench.workloads.pg_scale child URL``, concurrency 32 each) are started,
wait until all are ready, and get a "go" together; the clock stops when the store counts N
succeeded jobs. Enqueue: K processes, one producer each awaiting every enqueue of an ownerless
job, for :data:`PRODUCE_SECONDS` (:mod:`.pg_producers`, which also samples where their
backends wait: the note of each row).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..common import Config, Measurement, fresh_database, not_run, one_line
from .pg_producers import run as produce
from .throughput import postgres_backend_missing

WORKLOAD = "W4 PostgreSQL scale"
PROCESSES = (1, 2, 4)
CONCURRENCY = 32
JOB_NAME = "bench.pg_scale.noop"
TIMEOUT = 300.0
PRODUCE_SECONDS = 5.0
PRODUCE_NOTE = "one producer per process awaiting each enqueue of an ownerless job"


async def noop() -> None:
    pass


async def _child(url: str) -> None:
    from quart_jobs import Jobs

    jobs = Jobs(url)
    jobs.register(noop, name=JOB_NAME)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with jobs:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        async with jobs.run_worker(concurrency=CONCURRENCY, shutdown_timeout=5):
            await stop.wait()


def _spawn(url: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")) if p
    )
    return subprocess.Popen(
        [sys.executable, "-m", "bench.workloads.pg_scale", "child", url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


async def _round(n: int, processes: int) -> float:
    from quart_jobs import Jobs, JobState

    async with fresh_database("bench_w4") as url:
        jobs = Jobs(url)
        jobs.register(noop, name=JOB_NAME)
        async with jobs:
            vip, regular = jobs.options(priority="vip").settings, jobs.options().settings
            for start in range(0, n, 1000):
                calls: list[tuple[str, tuple[()], dict[str, Any]]]
                calls = [(JOB_NAME, (), {})] * min(1000, n - start)
                await jobs.enqueue_many(calls, vip if (start // 1000) % 2 else regular)
            children = [_spawn(url) for _ in range(processes)]
            try:
                for child in children:
                    assert child.stdout is not None
                    line = await asyncio.to_thread(child.stdout.readline)
                    if line.strip() != "ready":
                        raise RuntimeError(f"worker process said {line!r} ({child.poll()})")
                t0 = time.perf_counter()
                for child in children:
                    assert child.stdin is not None
                    child.stdin.write("go\n")
                    child.stdin.flush()
                while True:
                    stats = await jobs.stats()
                    if stats.count(JobState.SUCCEEDED) >= n:
                        break
                    if time.perf_counter() - t0 > TIMEOUT:
                        raise TimeoutError(f"{stats.count(JobState.SUCCEEDED)} of {n} done")
                    await asyncio.sleep(0.05)
                return time.perf_counter() - t0
            finally:
                for child in children:
                    child.terminate()
                for child in children:
                    try:
                        await asyncio.to_thread(child.wait, 15)
                    except subprocess.TimeoutExpired:
                        child.kill()
                    for pipe in (child.stdin, child.stdout):
                        if pipe is not None:
                            pipe.close()


async def run(cfg: Config, log: Callable[[str], None]) -> list[Measurement]:
    reason = postgres_backend_missing()
    if reason:
        return [not_run(WORKLOAD, "quart-jobs PostgreSQL", "drain jobs/s", reason, "jobs/s")]
    n = cfg.size(10_000, smoke=20)
    processes = PROCESSES[:1] if cfg.smoke else PROCESSES
    rows = {
        k: Measurement(
            WORKLOAD,
            f"quart-jobs PostgreSQL, {k} worker process{'es' if k > 1 else ''}",
            "drain jobs/s",
            "jobs/s",
            n=n,
            note=f"concurrency {CONCURRENCY} per process; backlog drained",
        )
        for k in processes
    }
    producing = {
        k: Measurement(
            WORKLOAD,
            f"quart-jobs PostgreSQL, {k} producing process{'es' if k > 1 else ''}",
            "enqueue jobs/s",
            "jobs/s",
            note=PRODUCE_NOTE,
        )
        for k in processes
    }
    seconds_each = 1.0 if cfg.smoke else PRODUCE_SECONDS
    try:
        for rnd in range(cfg.rounds):
            for k in processes:
                seconds = await _round(n, k)
                rows[k].values.append(n / seconds)
                log(f"  round {rnd + 1}/{cfg.rounds} {k} process(es): {n / seconds:,.0f} jobs/s")
            async with fresh_database("bench_w4_producers") as url:
                from quart_jobs import Jobs

                async with Jobs(url):  # the schema, before the producers start
                    pass
                for k in processes:
                    rate, waits = await asyncio.to_thread(produce, url, k, seconds_each, False)
                    producing[k].values.append(rate)
                    producing[k].note = f"{PRODUCE_NOTE}, {seconds_each:g} s; waits {waits}"
                    log(f"  round {rnd + 1}/{cfg.rounds} {k} producing: {rate:,.0f}/s ({waits})")
    except Exception as exc:
        return [
            not_run(WORKLOAD, "quart-jobs PostgreSQL", "drain jobs/s", f"failed: {one_line(exc)}")
        ]
    return [*rows.values(), *producing.values()]


def ratios(rows: list[Measurement]) -> list[str]:
    out = []
    for metric, one, what in (
        ("drain jobs/s", "quart-jobs PostgreSQL, 1 worker process", "worker"),
        ("enqueue jobs/s", "quart-jobs PostgreSQL, 1 producing process", "producing"),
    ):
        ok = {
            m.system: m.median
            for m in rows
            if m.workload == WORKLOAD and m.metric == metric and m.ok
        }
        base = ok.get(one)
        if not base:
            continue
        out += [
            f"W4 scaling ({what}): {system.split(', ')[1]} = {value / base:.2f}x one process"
            for system, value in ok.items()
        ]
        four = ok.get("quart-jobs PostgreSQL, 4 producing processes")
        if what == "producing" and four:
            verdict = "MET" if four / base >= 2 else "MISSED"
            out.append(
                f"target PostgreSQL enqueues from 4 processes >= 2x one process's: "
                f"{four / base:.2f}x {verdict} ({four:,.0f}/s vs {base:,.0f}/s)"
            )
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        asyncio.run(_child(sys.argv[2]))
    else:
        sys.exit("usage: python -m bench.workloads.pg_scale child URL")
