"""The in-memory intakes W3 and W7 compare the order service with (each its own process).

    python -m bench.in_memory_apps quart PORT          # Quart + asyncio.PriorityQueue, Hypercorn
    python -m bench.in_memory_apps quart-uvicorn PORT  # the same app under uvicorn
    python -m bench.in_memory_apps aiohttp PORT        # aiohttp + asyncio.PriorityQueue

Both check the bearer key, parse the JSON body, queue the order (VIP first, FIFO within a tier)
and answer 202 with the order id; ``BENCH_WORKERS`` worker tasks (default 4) take orders off the
queue, each sleeping the order's ``processing_seconds`` (W3 sends 0: no sleep) and recording when
it started. ``GET /orders/ID?wait=S`` (Quart) answers with that start once the order has ended
or S seconds passed, as the order service's long poll does (W7). Nothing is durable.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

KEYS = {"Bearer demo-regular-key": 10, "Bearer demo-vip-key": 0}
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))


@dataclass(order=True, slots=True)
class Order:
    priority: int
    seq: int
    body: dict[str, Any] = field(compare=False)


class Intake:
    def __init__(self) -> None:
        self.queue: asyncio.PriorityQueue[Order] = asyncio.PriorityQueue()
        self.seq = itertools.count(1)
        self.workers: list[asyncio.Task[None]] = []
        #: Order id -> when a worker took it (seconds since the epoch, as the service's clock).
        self.started: dict[int, float] = {}
        self.done: set[int] = set()
        #: Order id -> set when it ended, for the orders someone waits for.
        self.ended: dict[int, asyncio.Event] = {}

    def start(self) -> None:
        self.workers = [asyncio.create_task(self._work()) for _ in range(WORKERS)]

    async def stop(self) -> None:
        for w in self.workers:
            w.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            order = await self.queue.get()
            seconds = order.body.get("processing_seconds") or 0
            if seconds:
                self.started[order.seq] = time.time()
                await asyncio.sleep(seconds)
                self.done.add(order.seq)
                event = self.ended.pop(order.seq, None)
                if event is not None:
                    event.set()
            self.queue.task_done()

    async def wait(self, order_id: int, seconds: float) -> dict[str, Any]:
        """The order's start (``None`` until it started), once it ended or after ``seconds``."""
        if order_id not in self.done:
            event = self.ended.setdefault(order_id, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), seconds)
            except TimeoutError:
                pass
        return {"id": order_id, "started_at": self.started.get(order_id)}

    def accept(self, auth: str | None, body: Any) -> tuple[dict[str, Any], int]:
        priority = KEYS.get(auth or "")
        if priority is None:
            return {"error": {"code": "unauthorized"}}, 401
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            return {"error": {"code": "invalid"}}, 400
        order = Order(priority, next(self.seq), body)
        self.queue.put_nowait(order)
        return {"id": order.seq, "status": "queued"}, 202


def quart_app() -> Any:
    from quart import Quart, jsonify, request

    app = Quart("bench_intake")
    intake = Intake()

    @app.before_serving
    async def start() -> None:
        intake.start()

    @app.after_serving
    async def stop() -> None:
        await intake.stop()

    @app.post("/orders")
    async def create() -> Any:
        body = await request.get_json(silent=True)
        data, status = intake.accept(request.headers.get("Authorization"), body)
        return jsonify(data), status

    @app.get("/orders/<int:order_id>")
    async def get(order_id: int) -> Any:
        if request.headers.get("Authorization") not in KEYS:
            return jsonify({"error": {"code": "unauthorized"}}), 401
        wait = min(float(request.args.get("wait", "0") or 0), 30.0)
        return jsonify(await intake.wait(order_id, wait))

    return app


async def serve_quart(port: int) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(quart_app(), config, shutdown_trigger=stop.wait)


def serve_quart_uvicorn(port: int) -> None:
    import uvicorn

    # uvicorn's own signal handling: SIGTERM stops it gracefully.
    uvicorn.run(quart_app(), host="127.0.0.1", port=port, access_log=False, log_level="warning")


def serve_aiohttp(port: int) -> None:
    from aiohttp import web

    intake = Intake()

    async def create(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        data, status = intake.accept(request.headers.get("Authorization"), body)
        return web.json_response(data, status=status)

    async def lifecycle(app: web.Application) -> Any:
        intake.start()
        yield
        await intake.stop()

    app = web.Application()
    app.router.add_post("/orders", create)
    app.cleanup_ctx.append(lifecycle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _tune_gc() -> None:
    """``BENCH_GC=1``: the garbage collector as ``orders serve`` sets it
    (:func:`order_service.runtime.tune_gc`), for a like-for-like row."""
    import gc

    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(10_000, older, oldest)


if __name__ == "__main__":
    if os.environ.get("BENCH_GC") == "1":
        _tune_gc()
    if len(sys.argv) != 3 or sys.argv[1] not in ("quart", "quart-uvicorn", "aiohttp"):
        sys.exit("usage: python -m bench.in_memory_apps quart|quart-uvicorn|aiohttp PORT")
    if sys.argv[1] == "quart":
        asyncio.run(serve_quart(int(sys.argv[2])))
    elif sys.argv[1] == "quart-uvicorn":
        serve_quart_uvicorn(int(sys.argv[2]))
    else:
        serve_aiohttp(int(sys.argv[2]))
