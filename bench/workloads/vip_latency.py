"""W2 VIP latency: 2,000 regular 5 ms jobs queued, concurrency 1; 20 VIP jobs arrive 0.5 s in.

The number is each VIP job's wait: from just before its enqueue call to the moment its function
starts. The 20 VIP jobs arrive one after another (a loop of enqueues), so they also queue behind
each other: the median includes ~10 VIP jobs of 5 ms ahead of it, for every system alike.

*Single VIP* rows (the order service's case: alice places one order while bob's backlog runs):
the 20 VIP jobs arrive one at a time, each once the previous one has started plus 7.5 ms, so
each finds only regular jobs queued; its wait is the rest of the running regular job (0-5 ms)
plus the enqueue, the wake-up and the claim.

``bench/tools/vip_latency_ab.py`` runs the quart-jobs rows against an older release, interleaved.
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

from ..common import Config, Measurement, not_run, one_line

WORKLOAD = "W2 VIP latency"
JOB_SECONDS = 0.005
VIP_AT = 0.5
VIP_COUNT = 20
TIMEOUT = 60.0

#: Single VIP rows: the pause after a VIP job started before the next one arrives.
SINGLE_GAP = 1.5 * JOB_SECONDS

# VIP waits recorded by the running jobs (seconds); the events set when all (and one) started;
# how many VIP jobs arrive this round (VIP_COUNT, fewer in a smoke run).
_waits: list[float] = []
_vip_count = VIP_COUNT
_all_started: asyncio.Event | None = None
_one_started: asyncio.Event | None = None


def _record_wait(t0: float) -> None:
    _waits.append(time.perf_counter() - t0)
    if _one_started is not None:
        _one_started.set()
    if len(_waits) == _vip_count and _all_started is not None:
        _all_started.set()


async def arrive(enqueue: Callable[[float], Awaitable[object]], single: bool) -> None:
    """The VIP arrivals: a burst of VIP_COUNT enqueues, or (``single``) one at a time, each
    SINGLE_GAP after the previous one started. ``enqueue(t0)`` enqueues one VIP job."""
    global _one_started
    for _ in range(_vip_count):
        _one_started = asyncio.Event()
        await enqueue(time.perf_counter())
        if single:
            await asyncio.wait_for(_one_started.wait(), TIMEOUT)
            await asyncio.sleep(SINGLE_GAP)


async def qj_regular() -> None:
    await asyncio.sleep(JOB_SECONDS)


async def qj_vip(t0: float) -> None:
    _record_wait(t0)
    await asyncio.sleep(JOB_SECONDS)


def _unlink(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def quart_jobs_sqlite(cfg: Config, regular: int, single: bool = False) -> list[float]:
    """The default weights: VIP 9 starts per regular start, so ~2 of the 20 VIP jobs' slots go
    to the regular backlog (by design: the regular tier keeps 1/10 of the starts)."""
    return await _quart_jobs_sqlite(cfg, regular, None, single)


async def quart_jobs_sqlite_strict(cfg: Config, regular: int, single: bool = False) -> list[float]:
    """Strict priority (``weights={0: inf, 10: 1}``): the claim's cost alone, no fair share."""
    return await _quart_jobs_sqlite(cfg, regular, {0: math.inf, 10: 1.0}, single)


async def _quart_jobs_sqlite(
    cfg: Config, regular: int, weights: dict[int, float] | None, single: bool
) -> list[float]:
    global _all_started
    from quart_jobs import Jobs

    path = cfg.workdir / f"w2-{uuid.uuid4().hex[:8]}.sqlite3"
    # Without weights, the release's defaults (and releases before weights existed run too).
    options: dict[str, Any] = {} if weights is None else {"weights": weights}
    jobs = Jobs(f"sqlite:///{path}", **options)
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
                await asyncio.sleep(cfg.seconds(VIP_AT, VIP_AT, 0.02))
                await arrive(lambda t0: vip.enqueue(vip_task, t0), single)
                await asyncio.wait_for(_all_started.wait(), TIMEOUT)
        return list(_waits)
    finally:
        _unlink(path)


@dataclass(order=True, slots=True)
class _Item:
    priority: int
    seq: int
    func: Callable[[], Awaitable[None]] = field(compare=False)


async def priority_queue(cfg: Config, regular: int, single: bool = False) -> list[float]:
    global _all_started
    queue: asyncio.PriorityQueue[_Item] = asyncio.PriorityQueue()
    seq = itertools.count()
    _waits.clear()
    _all_started = started = asyncio.Event()

    async def regular_job() -> None:
        await asyncio.sleep(JOB_SECONDS)

    def vip_job(t0: float) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            _record_wait(t0)
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
    await asyncio.sleep(cfg.seconds(VIP_AT, VIP_AT, 0.02))
    await arrive(lambda t0: queue.put(_Item(0, next(seq), vip_job(t0))), single)
    await asyncio.wait_for(started.wait(), TIMEOUT)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return list(_waits)


def _huey_round(path: Path, regular: int) -> list[float]:
    from huey import SqliteHuey
    from huey.consumer import Consumer

    huey = SqliteHuey("w2", filename=str(path), results=False)
    waits: list[float] = []
    started = threading.Event()

    def _regular_job() -> None:
        time.sleep(JOB_SECONDS)

    def _vip_job(t0: float) -> None:
        waits.append(time.perf_counter() - t0)
        if len(waits) == _vip_count:
            started.set()
        time.sleep(JOB_SECONDS)

    regular_job = huey.task()(_regular_job)  # not decorators: Huey is untyped
    vip_job = huey.task()(_vip_job)

    for _ in range(regular):
        regular_job(priority=0)
    consumer = Consumer(huey, workers=1, worker_type="thread", periodic=False)
    consumer._set_signal_handlers = lambda: None  # not the main thread
    consumer.start()
    time.sleep(VIP_AT)
    for _ in range(_vip_count):
        vip_job(time.perf_counter(), priority=10)  # Huey: higher runs first
    ok = started.wait(TIMEOUT)
    consumer.stop(graceful=True)
    huey.storage.close()
    if not ok:
        raise TimeoutError(f"only {len(waits)} of {_vip_count} VIP jobs started")
    return waits


async def huey(cfg: Config, regular: int) -> list[float]:
    path = cfg.workdir / f"w2-huey-{uuid.uuid4().hex[:8]}.sqlite3"
    try:
        return await asyncio.to_thread(_huey_round, path, regular)
    finally:
        _unlink(path)


Runner = Callable[..., Awaitable[list[float]]]

#: (name, the round, note, whether it also runs the single-VIP arrivals, whether a peer).
SYSTEMS: list[tuple[str, Runner, str, bool, bool]] = [
    ("asyncio.PriorityQueue (ceiling)", priority_queue, "in memory, 1 worker task", True, False),
    (
        "quart-jobs SQLite FULL",
        quart_jobs_sqlite,
        "concurrency 1, in-process worker, VIP weight 9",
        True,
        False,
    ),
    (
        "quart-jobs SQLite FULL, strict priority",
        quart_jobs_sqlite_strict,
        "concurrency 1, in-process worker, weights inf",
        True,
        False,
    ),
    ("Huey SqliteHuey", huey, "Consumer, 1 thread; int priority", False, True),
]


def wait_stats(waits: list[float], single: bool) -> dict[str, float]:
    """The metrics of one round (ms), named as in the tables."""
    prefix = "single VIP wait" if single else "VIP wait"
    return {f"{prefix} median": statistics.median(waits) * 1000, f"{prefix} max": max(waits) * 1000}


async def run(cfg: Config, log: Callable[[str], None]) -> list[Measurement]:
    global _vip_count
    regular = cfg.size(2_000, 400, 4)
    _vip_count = cfg.size(VIP_COUNT, VIP_COUNT, 3)
    systems = [s for s in SYSTEMS if cfg.peers or not s[4]]
    rows: dict[tuple[str, str], Measurement] = {}
    failed: dict[str, str] = {}
    for rnd in range(cfg.rounds):
        for name, func, note, has_single, _ in systems:
            for single in (False, True) if has_single else (False,):
                if name in failed:
                    continue
                try:
                    waits = await (func(cfg, regular, True) if single else func(cfg, regular))
                except Exception as exc:
                    failed[name] = f"failed: {one_line(exc)}"
                    log(f"  {name}: {failed[name]}")
                    continue
                stats = wait_stats(waits, single)
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
                shown = ", ".join(f"{k} {v:.1f} ms" for k, v in stats.items())
                log(f"  round {rnd + 1}/{cfg.rounds} {name}: {shown}")
    out: list[Measurement] = []
    for name, *_ in systems:
        if name in failed:
            out.append(not_run(WORKLOAD, name, "VIP wait median ms", failed[name], "ms"))
        else:
            out.extend(m for (s, _), m in rows.items() if s == name)
    return out
