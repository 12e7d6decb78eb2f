"""W5 wake-up across processes: enqueue-to-start latency for an idle worker in another process.

The benchmark process plays the web process with ``EMBEDDED_WORKERS=0``: it enqueues and runs
no worker. A separate ``quart-jobs worker`` process (concurrency 4, the default
``POLL_INTERVAL`` of 0.5 s) runs the jobs. One job at a time: enqueue, wait until it has
succeeded, pause a random 10 ms to one poll interval (so arrivals fall anywhere in the
worker's poll cycle, as a web app's do), next. The number is each job's
latency from just before the enqueue call to the moment its function starts (the task returns
``time.time()``; both processes share the machine's clock). Without a wake-up between the
processes the worker finds the job at its next poll (a quarter to a half of a second).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from quart_jobs import Jobs, JobState
from quart_jobs.worker import WorkerSettings

from ..common import Config, Measurement, fresh_database, not_run, one_line
from .throughput import postgres_backend_missing

WORKLOAD = "W5 wake-up"
JOB_NAME = "bench.wakeup.stamp"
POLL_INTERVAL = 0.5
CONCURRENCY = 4
TARGET_MS = 20.0
TIMEOUT = 30.0
URL_VARIABLE = "BENCH_W5_DATABASE_URL"

#: What the worker process loads (``quart-jobs --app bench.workloads.wakeup:jobs worker``).
jobs = Jobs(
    os.environ.get(URL_VARIABLE, "memory://"),
    worker_settings=WorkerSettings(poll_interval=POLL_INTERVAL),
)


@jobs.task(name=JOB_NAME)
async def stamp() -> float:
    return time.time()


def _worker_process(url: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env[URL_VARIABLE] = url
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")) if p
    )
    command = str(Path(sys.executable).parent / "quart-jobs")
    return subprocess.Popen(
        [
            command,
            "--app",
            "bench.workloads.wakeup:jobs",
            "worker",
            "--concurrency",
            str(CONCURRENCY),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )


async def _await_started(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    while True:
        line = await asyncio.to_thread(proc.stderr.readline)
        if not line:
            raise RuntimeError(f"the worker process exited ({proc.poll()}) before it ran")
        if line.startswith("worker ") and " running " in line:
            # Keep reading stderr so the worker never blocks on a full pipe.
            asyncio.get_running_loop().run_in_executor(None, proc.stderr.read)
            return


async def _latencies(url: str, n: int, pause: float) -> list[float]:
    """``n`` enqueue-to-start latencies, each job enqueued after a random pause of up to
    ``pause`` seconds (a poll interval: arrivals anywhere in the worker's poll cycle)."""
    producer = Jobs(url)
    producer.register(stamp.func, name=JOB_NAME)
    async with producer:
        worker = _worker_process(url)
        try:
            await asyncio.wait_for(_await_started(worker), TIMEOUT)
            out = []
            for _ in range(n):
                await asyncio.sleep(random.uniform(0.01, pause))
                t0 = time.time()
                job = await producer.enqueue(JOB_NAME)
                deadline = time.monotonic() + TIMEOUT
                while (done := await producer.get(job.id)).state is not JobState.SUCCEEDED:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"job {job.id} still {done.state.value}")
                    await asyncio.sleep(0.002)
                out.append(float(done.result) - t0)
            return out
        finally:
            worker.terminate()
            try:
                await asyncio.to_thread(worker.wait, 15)
            except subprocess.TimeoutExpired:
                worker.kill()
            if worker.stderr is not None:
                worker.stderr.close()


async def _sqlite(cfg: Config, n: int) -> list[float]:
    path = cfg.workdir / f"w5-{uuid.uuid4().hex[:8]}.sqlite3"
    return await _latencies(f"sqlite:///{path}", n, cfg.seconds(POLL_INTERVAL, POLL_INTERVAL, 0.05))


async def _postgres(cfg: Config, n: int) -> list[float]:
    async with fresh_database("bench_w5") as url:
        return await _latencies(url, n, cfg.seconds(POLL_INTERVAL, POLL_INTERVAL, 0.05))


Runner = Callable[[Config, int], Awaitable[list[float]]]
SYSTEMS: tuple[tuple[str, Runner, Callable[[], str | None]], ...] = (
    ("quart-jobs SQLite FULL, worker process", _sqlite, lambda: None),
    ("quart-jobs PostgreSQL, worker process", _postgres, postgres_backend_missing),
)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def run(cfg: Config, log: Callable[[str], None]) -> list[Measurement]:
    n = cfg.size(200, 20)
    note = f"idle worker, concurrency {CONCURRENCY}, poll interval {POLL_INTERVAL}s"
    out: list[Measurement] = []
    for name, func, missing in SYSTEMS:
        reason = missing()
        if reason:
            out.append(not_run(WORKLOAD, name, "enqueue-to-start median ms", reason, "ms"))
            continue
        rows = {
            metric: Measurement(
                WORKLOAD,
                name,
                f"enqueue-to-start {metric} ms",
                "ms",
                n=n,
                note=note,
                higher_is_better=False,
            )
            for metric in ("median", "p99")
        }
        try:
            for rnd in range(cfg.rounds):
                waits = await func(cfg, n)
                median, tail = statistics.median(waits) * 1000, p99(waits) * 1000
                rows["median"].values.append(median)
                rows["p99"].values.append(tail)
                log(
                    f"  round {rnd + 1}/{cfg.rounds} {name}: "
                    f"median {median:.1f} ms, p99 {tail:.1f} ms"
                )
        except Exception as exc:
            out.append(
                not_run(WORKLOAD, name, "enqueue-to-start median ms", f"failed: {one_line(exc)}")
            )
            log(f"  {name}: failed: {one_line(exc)}")
            continue
        out.extend(rows.values())
    return out


def ratios(rows: list[Measurement]) -> list[str]:
    out = []
    for m in rows:
        if m.workload == WORKLOAD and m.ok and "median" in m.metric:
            verdict = "MET" if m.median <= TARGET_MS else "MISSED"
            out.append(
                f"target W5 {m.system} enqueue-to-start median <= {TARGET_MS:.0f} ms: "
                f"{m.median:.1f} ms {verdict}"
            )
        elif m.workload == WORKLOAD and not m.ok:
            out.append(f"target W5 {m.system}: not measured ({m.reason})")
    return out
