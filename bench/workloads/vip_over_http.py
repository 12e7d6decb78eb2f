"""W7 VIP wait over HTTP: a VIP order placed behind a backlog of regular orders, end to end.

Each server its own process on this machine, processing concurrency 1:

* the order service (``orders serve``, its default server uvicorn; a fresh SQLite file,
  ``ORDERS_DEMO=1``, ``WORKER_CONCURRENCY=1``, the embedded worker, quotas raised);
* the in-memory Quart app of :mod:`bench.in_memory_apps` under uvicorn with one worker task that
  takes the orders off an ``asyncio.PriorityQueue`` (VIP first) and sleeps each order's
  ``processing_seconds``.

Per round and server: :data:`REGULAR` regular orders of 5 ms are posted over HTTP (16 at a
time), then :data:`VIPS` VIP orders one at a time: a random pause of 0-5 ms (so the VIP order
lands anywhere in the regular order being processed), the clock read just before its ``POST``,
then ``GET /orders/{id}?wait=10`` until it ended, and its ``started_at`` (when the worker
took it: the order service's millisecond timestamp, the in-memory app's float) minus the clock
read before the ``POST`` is its wait. The wait includes the ``POST`` itself: for the order
service, its commit with ``synchronous=FULL``, the wake-up of the worker and its claim.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..common import Config, Measurement, not_run, per_round
from . import http_intake

WORKLOAD = "W7 VIP wait over HTTP"
ORDERS = "order service (`orders serve`, SQLite FULL, concurrency 1)"
ORDERS_STRICT = "order service, strict priority (VIP_WEIGHT=inf)"
#: The structural option: the worker off the web process's GIL (its own process).
ORDERS_SPLIT = "order service, EMBEDDED_WORKERS=0 + `orders worker --concurrency 1`"
QUART_MEM = "Quart + asyncio.PriorityQueue (uvicorn, 1 worker task)"
REGULAR = 400
VIPS = 40
SECONDS = 0.005
REGULAR_KEY = "Bearer demo-regular-key"
VIP_KEY = "Bearer demo-vip-key"


def _command(system: str, port: int, cfg: Config) -> tuple[list[str], dict[str, str]]:
    env = http_intake._env()
    if system == QUART_MEM:
        env["BENCH_WORKERS"] = "1"
        return [sys.executable, "-m", "bench.in_memory_apps", "quart-uvicorn", str(port)], env
    db = cfg.workdir / f"w7-{uuid.uuid4().hex[:8]}.sqlite3"
    env |= {
        "DATABASE_URL": f"sqlite:///{db}",
        "ORDERS_DEMO": "1",
        "WORKER_CONCURRENCY": "1",
        # One job at a time in all, as the in-memory app runs them (the default would run
        # a web process, and its worker, per CPU).
        "WEB_PROCESSES": "1",
        "MAX_QUEUED": "10000000",
        "MAX_QUEUED_PER_CUSTOMER": "10000000",
        "RATE_LIMIT_PER_CUSTOMER": "0",
    }
    env.pop("SERVER", None)
    if system == ORDERS_STRICT:
        env["VIP_WEIGHT"] = "inf"
    if system == ORDERS_SPLIT:
        env["EMBEDDED_WORKERS"] = "0"
    code = "from order_service.cli import main; main()"
    return [sys.executable, "-c", code, "serve", "--port", str(port)], env


def _started(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


async def _measure(port: int, regular: int, vips: int) -> list[float]:
    import aiohttp

    base = f"http://127.0.0.1:{port}"
    body = {"items": [{"sku": "w7", "quantity": 1}], "processing_seconds": SECONDS}
    async with aiohttp.ClientSession() as session:

        async def post(key: str) -> int:
            async with session.post(
                f"{base}/orders", json=body, headers={"Authorization": key}
            ) as response:
                if response.status != 202:
                    raise RuntimeError(f"POST /orders: {response.status} {await response.text()}")
                return int((await response.json())["id"])

        async def started_at(order_id: int, key: str) -> float:
            """When the order started, once it ended (long polls of 10 s, 30 s at most)."""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                async with session.get(
                    f"{base}/orders/{order_id}?wait=10", headers={"Authorization": key}
                ) as response:
                    started = _started((await response.json()).get("started_at"))
                if started is not None:
                    return started
            raise RuntimeError(f"order {order_id} did not start within 30 s")

        first = await post(REGULAR_KEY)
        todo = iter(range(regular - 1))

        async def poster() -> None:
            for _ in todo:
                await post(REGULAR_KEY)

        await asyncio.gather(*(poster() for _ in range(16)))
        await started_at(first, REGULAR_KEY)  # the worker runs (its own process may start late)
        waits = []
        for _ in range(vips):
            await asyncio.sleep(random.uniform(0, SECONDS))
            t0 = time.time()
            order_id = await post(VIP_KEY)
            waits.append((await started_at(order_id, VIP_KEY) - t0) * 1000)
        return waits


def _run_one(system: str, cfg: Config, regular: int, vips: int) -> list[float]:
    port = http_intake._free_port()
    cmd, env = _command(system, port, cfg)
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        http_intake._wait_port(port, procs[0])
        if system == ORDERS_SPLIT:  # the web process made the schema: now its worker
            worker = [*cmd[:3], "worker", "--concurrency", "1"]
            procs.append(
                subprocess.Popen(
                    worker, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
        return asyncio.run(_measure(port, regular, vips))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def run(cfg: Config, log: Callable[[str], None]) -> list[Measurement]:
    systems = [QUART_MEM]
    missing = http_intake.orders_missing()
    out: list[Measurement] = []
    if missing:
        out.append(not_run(WORKLOAD, ORDERS, "VIP wait median ms", missing))
    else:
        systems[:0] = [ORDERS, ORDERS_STRICT, ORDERS_SPLIT]
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return [not_run(WORKLOAD, "all", "VIP wait median ms", "aiohttp not installed (bench)")]
    regular, vips = cfg.size(REGULAR, 100), cfg.size(VIPS, 5)
    note = f"{vips} VIP, one at a time, behind {regular} regular of 5 ms; concurrency 1"

    def waits_of(system: str) -> dict[str, float]:
        waits = _run_one(system, cfg, regular, vips)
        return {"VIP wait median ms": statistics.median(waits), "VIP wait max ms": max(waits)}

    def row(system: str, metric: str) -> Measurement:
        return Measurement(
            WORKLOAD, system, metric, "ms", n=vips, note=note, higher_is_better=False
        )

    out += await per_round(
        cfg, systems, waits_of, row, log, workload=WORKLOAD, metric="VIP wait median ms"
    )
    return out


def ratios(rows: list[Measurement]) -> list[str]:
    med = {(m.system, m.metric): m.median for m in rows if m.workload == WORKLOAD and m.ok}
    mem = med.get((QUART_MEM, "VIP wait median ms"))
    out = []
    for system, label in (
        (ORDERS, ""),
        (ORDERS_STRICT, ", strict priority"),
        (ORDERS_SPLIT, ", worker in its own process"),
    ):
        ours = med.get((system, "VIP wait median ms"))
        if ours and mem:
            line = (
                f"target W7 VIP wait over HTTP{label} <= 1.1x in-memory Quart (both uvicorn): "
                f"{ours / mem:.2f}x {'MET' if ours / mem <= 1.1 else 'MISSED'} "
                f"({ours:.1f} vs {mem:.1f} ms median"
            )
            top, top_mem = (
                med.get((system, "VIP wait max ms")),
                med.get((QUART_MEM, "VIP wait max ms")),
            )
            if top is not None and top_mem is not None:
                line += f"; max {top:.1f} vs {top_mem:.1f} ms"
            out.append(line + ")")
    return out
