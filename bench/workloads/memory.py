"""Memory: RSS of a worker process (a subprocess) with 100,000 jobs queued in SQLite.

Two readings of the same child program (``python -m bench.workloads.memory child PATH MODE``):

* ``busy``: a worker with 32 slots, all taken by long jobs, the rest of the backlog waiting;
  the RSS is sampled for a few seconds and the peak kept;
* ``drain``: the same worker running no-op jobs against the backlog; peak RSS over the window.

The child's RSS before opening the store (imports done) is reported as the baseline.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..common import Config, Measurement, not_run, one_line

WORKLOAD = "Memory"
CONCURRENCY = 32
TARGET_MB = 150.0
SAMPLE_SECONDS = 4.0
JOB_NAME = "bench.memory.job"


async def long_job() -> None:
    await asyncio.sleep(3600)


async def noop_job() -> None:
    pass


def _rss_mb(pid: int | None = None) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)


async def _child(path: Path, mode: str) -> None:
    from quart_jobs import Jobs, JobState

    print(f"baseline {_rss_mb():.2f}", flush=True)
    jobs = Jobs(f"sqlite:///{path}")
    jobs.register(long_job if mode == "busy" else noop_job, name=JOB_NAME)
    async with jobs, jobs.run_worker(concurrency=CONCURRENCY, shutdown_timeout=0):
        if mode == "busy":
            while (await jobs.stats()).count(JobState.RUNNING) < CONCURRENCY:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        print("ready", flush=True)
        await asyncio.sleep(SAMPLE_SECONDS + 30)  # the parent ends us


async def _populate(path: Path, count: int) -> None:
    from quart_jobs import Jobs

    jobs = Jobs(f"sqlite:///{path}")
    jobs.register(noop_job, name=JOB_NAME)
    vip, regular = jobs.options(priority="vip").settings, jobs.options().settings
    async with jobs:
        batch = 1000
        for start in range(0, count, batch):
            size = min(batch, count - start)
            calls: list[tuple[str, tuple[int], dict[str, Any]]] = [
                (JOB_NAME, (start + i,), {}) for i in range(size)
            ]
            await jobs.enqueue_many(calls, vip if (start // batch) % 2 else regular)


def _unlink(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _measure(path: Path, mode: str) -> tuple[float, float]:
    """(baseline MB, peak RSS MB) of a child in ``mode``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")) if p
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.workloads.memory", "child", str(path), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        baseline = float(proc.stdout.readline().split()[1])
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"child said {line!r} (exit {proc.poll()})")
        peak = 0.0
        deadline = time.monotonic() + SAMPLE_SECONDS
        while time.monotonic() < deadline:
            peak = max(peak, _rss_mb(proc.pid))
            time.sleep(0.05)
        return baseline, peak
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run(cfg: Config, log: Callable[[str], None]) -> list[Measurement]:
    count = cfg.size(100_000, 10_000)
    rows = {
        "baseline": Measurement(
            WORKLOAD,
            "quart-jobs worker process",
            "RSS MB, imports only (baseline)",
            "MB",
            n=count,
            note="python + quart_jobs imported",
            higher_is_better=False,
        ),
        "busy": Measurement(
            WORKLOAD,
            "quart-jobs worker process",
            f"peak RSS MB, {CONCURRENCY} slots busy, backlog queued",
            "MB",
            n=count,
            note=f"target <= {TARGET_MB:.0f} MB",
            higher_is_better=False,
        ),
        "drain": Measurement(
            WORKLOAD,
            "quart-jobs worker process",
            "peak RSS MB, draining the backlog",
            "MB",
            n=count,
            note=f"no-op jobs, concurrency {CONCURRENCY}, {SAMPLE_SECONDS:.0f} s window",
            higher_is_better=False,
        ),
    }
    try:
        for rnd in range(cfg.rounds):
            path = cfg.workdir / f"mem-{uuid.uuid4().hex[:8]}.sqlite3"
            t0 = time.perf_counter()
            await _populate(path, count)
            made = time.perf_counter() - t0
            try:
                for mode in ("busy", "drain"):
                    baseline, peak = await asyncio.to_thread(_measure, path, mode)
                    rows[mode].values.append(peak)
                    if mode == "busy":
                        rows["baseline"].values.append(baseline)
                    log(
                        f"  round {rnd + 1}/{cfg.rounds} {mode}: baseline {baseline:.1f} MB, "
                        f"peak {peak:.1f} MB ({count:,} queued; populated in {made:.1f}s)"
                    )
            finally:
                _unlink(path)
    except Exception as exc:
        return [not_run(WORKLOAD, "quart-jobs worker process", "peak RSS MB", one_line(exc), "MB")]
    return list(rows.values())


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        asyncio.run(_child(Path(sys.argv[2]), sys.argv[3]))
    else:
        sys.exit("usage: python -m bench.workloads.memory child PATH busy|drain")
