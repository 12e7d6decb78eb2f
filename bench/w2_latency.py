"""W2 VIP latency: 2,000 regular 5 ms jobs queued, concurrency 1; 20 VIP jobs arrive 0.5 s in.

The number is each VIP job's wait: from just before its enqueue call to the moment its function
starts. The 20 VIP jobs arrive one after another (a loop of enqueues), so they also queue behind
each other: the median includes ~10 VIP jobs of 5 ms ahead of it, for every system alike.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import Config, Measurement, not_run, one_line

WORKLOAD = "W2 VIP latency"
JOB_SECONDS = 0.005
VIP_AT = 0.5
VIP_COUNT = 20
TIMEOUT = 60.0

# VIP waits recorded by the running jobs (seconds), and the event set when all have started.
_waits: list[float] = []
_all_started: asyncio.Event | None = None


def _record_wait(t0: float) -> None:
    _waits.append(time.perf_counter() - t0)
    if len(_waits) == VIP_COUNT and _all_started is not None:
        _all_started.set()


async def qj_regular() -> None:
    await asyncio.sleep(JOB_SECONDS)


async def qj_vip(t0: float) -> None:
    _record_wait(t0)
    await asyncio.sleep(JOB_SECONDS)


def _unlink(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def quart_jobs_sqlite(cfg: Config, regular: int) -> list[float]:
    """The default weights: VIP 9 starts per regular start, so ~2 of the 20 VIP jobs' slots go
    to the regular backlog (by design: the regular tier keeps 1/10 of the starts)."""
    return await _quart_jobs_sqlite(cfg, regular, None)


async def quart_jobs_sqlite_strict(cfg: Config, regular: int) -> list[float]:
    """Strict priority (``weights={0: inf, 10: 1}``): the claim's cost alone, as before issue 14."""
    return await _quart_jobs_sqlite(cfg, regular, {0: math.inf, 10: 1.0})


async def _quart_jobs_sqlite(
    cfg: Config, regular: int, weights: dict[int, float] | None
) -> list[float]:
    global _all_started
    from quart_jobs import Jobs

    path = cfg.workdir / f"w2-{uuid.uuid4().hex[:8]}.sqlite3"
    jobs = Jobs(f"sqlite:///{path}", weights=weights)
    reg = jobs.task(qj_regular)
    vip_task = jobs.task(qj_vip)
    _waits.clear()
    _all_started = asyncio.Event()
    try:
        async with jobs:
            for start in range(0, regular, 500):
                await jobs.enqueue_many([(reg, (), {})] * min(500, regular - start))
            vip = jobs.options(priority="vip")
            async with jobs.run_worker(concurrency=1):
                await asyncio.sleep(VIP_AT)
                for _ in range(VIP_COUNT):
                    await vip.enqueue(vip_task, time.perf_counter())
                await asyncio.wait_for(_all_started.wait(), TIMEOUT)
        return list(_waits)
    finally:
        _unlink(path)


@dataclass(order=True, slots=True)
class _Item:
    priority: int
    seq: int
    func: Callable[[], Awaitable[None]] = field(compare=False)


async def priority_queue(cfg: Config, regular: int) -> list[float]:
    queue: asyncio.PriorityQueue[_Item] = asyncio.PriorityQueue()
    seq = itertools.count()
    waits: list[float] = []
    started = asyncio.Event()

    async def regular_job() -> None:
        await asyncio.sleep(JOB_SECONDS)

    def vip_job(t0: float) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            waits.append(time.perf_counter() - t0)
            if len(waits) == VIP_COUNT:
                started.set()
            await asyncio.sleep(JOB_SECONDS)

        return job

    async def worker() -> None:
        while True:
            item = await queue.get()
            try:
                await item.func()
            finally:
                queue.task_done()

    for _ in range(regular):
        queue.put_nowait(_Item(10, next(seq), regular_job))
    task = asyncio.create_task(worker())
    await asyncio.sleep(VIP_AT)
    for _ in range(VIP_COUNT):
        t0 = time.perf_counter()
        await queue.put(_Item(0, next(seq), vip_job(t0)))
    await asyncio.wait_for(started.wait(), TIMEOUT)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return waits


def _huey_round(path: Path, regular: int) -> list[float]:
    from huey import SqliteHuey
    from huey.consumer import Consumer

    huey = SqliteHuey("w2", filename=str(path), results=False)
    waits: list[float] = []
    started = threading.Event()

    @huey.task()
    def regular_job() -> None:
        time.sleep(JOB_SECONDS)

    @huey.task()
    def vip_job(t0: float) -> None:
        waits.append(time.perf_counter() - t0)
        if len(waits) == VIP_COUNT:
            started.set()
        time.sleep(JOB_SECONDS)

    for _ in range(regular):
        regular_job(priority=0)
    consumer = Consumer(huey, workers=1, worker_type="thread", periodic=False)
    consumer._set_signal_handlers = lambda: None  # type: ignore[method-assign]
    consumer.start()
    time.sleep(VIP_AT)
    for _ in range(VIP_COUNT):
        vip_job(time.perf_counter(), priority=10)  # Huey: higher runs first
    ok = started.wait(TIMEOUT)
    consumer.stop(graceful=True)
    huey.storage.close()
    if not ok:
        raise TimeoutError(f"only {len(waits)} of {VIP_COUNT} VIP jobs started")
    return waits


async def huey(cfg: Config, regular: int) -> list[float]:
    path = cfg.workdir / f"w2-huey-{uuid.uuid4().hex[:8]}.sqlite3"
    try:
        return await asyncio.to_thread(_huey_round, path, regular)
    finally:
        _unlink(path)


SYSTEMS: list[tuple[str, Callable[[Config, int], Awaitable[list[float]]], str]] = [
    ("asyncio.PriorityQueue (ceiling)", priority_queue, "in memory, 1 worker task"),
    ("quart-jobs SQLite FULL", quart_jobs_sqlite, "concurrency 1, in-process worker, VIP weight 9"),
    (
        "quart-jobs SQLite FULL, strict priority",
        quart_jobs_sqlite_strict,
        "concurrency 1, in-process worker, weights inf",
    ),
    ("Huey SqliteHuey", huey, "Consumer, 1 thread; int priority"),
]


async def run(cfg: Config, log: Callable[[str], None]) -> list[Measurement]:
    regular = cfg.size(2_000, 400)
    rows: dict[tuple[str, str], Measurement] = {}
    failed: dict[str, str] = {}
    for rnd in range(cfg.rounds):
        for name, func, note in SYSTEMS:
            if name in failed:
                continue
            try:
                waits = await func(cfg, regular)
            except Exception as exc:
                failed[name] = f"failed: {one_line(exc)}"
                log(f"  {name}: {failed[name]}")
                continue
            stats: dict[str, Any] = {
                "VIP wait median": statistics.median(waits) * 1000,
                "VIP wait max": max(waits) * 1000,
            }
            for metric, value in stats.items():
                row = rows.get((name, metric))
                if row is None:
                    row = rows[(name, metric)] = Measurement(
                        WORKLOAD,
                        name,
                        f"{metric} ms",
                        "ms",
                        n=regular,
                        note=note,
                        higher_is_better=False,
                    )
                row.values.append(value)
            log(
                f"  round {rnd + 1}/{cfg.rounds} {name}: VIP wait median "
                f"{stats['VIP wait median']:.1f} ms, max {stats['VIP wait max']:.1f} ms"
            )
    out: list[Measurement] = []
    for name, _, _ in SYSTEMS:
        if name in failed:
            out.append(not_run(WORKLOAD, name, "VIP wait median ms", failed[name], "ms"))
        else:
            out.extend(m for (s, _), m in rows.items() if s == name)
    return out
