"""W1's SQLite peers: Huey (``SqliteHuey`` with a real ``Consumer``) and persist-queue
(``SQLiteAckQueue``), each round in a thread (both are synchronous libraries)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

from ..common import Config, Countdown, Phases
from .w1_shape import TIMEOUT, VIP_EVERY, unlink_sqlite

HUEY_WORKERS = 4  # `huey_consumer -w 4 -k thread`
PERSIST_QUEUE_THREADS = 1  # one consumer loop: persist-queue is one process, one consumer

# The counter the running jobs report to (set per phase).
_done: Countdown | None = None


def _hit() -> None:
    assert _done is not None
    _done.hit()


def _huey_round(path: Path, n: int) -> Phases:
    from huey import SqliteHuey
    from huey.consumer import Consumer

    global _done
    huey = SqliteHuey("bench", filename=str(path), results=False)

    def _noop() -> None:
        _hit()

    noop = huey.task()(_noop)  # not a decorator: Huey is untyped

    def produce() -> None:
        for i in range(n):
            noop(priority=10 if i % VIP_EVERY else 0)  # Huey: higher runs first

    def consumer() -> Consumer:
        c = Consumer(huey, workers=HUEY_WORKERS, worker_type="thread", periodic=False)
        c._set_signal_handlers = lambda: None  # not the main thread
        return c

    t0 = time.perf_counter()
    produce()
    enqueue = time.perf_counter() - t0

    _done = Countdown(n)
    c = consumer()
    t0 = time.perf_counter()
    c.start()
    if not _done.wait_blocking(TIMEOUT):
        raise TimeoutError(f"huey drained {_done.count} of {n}")
    drain = time.perf_counter() - t0

    _done = Countdown(n)
    t0 = time.perf_counter()
    produce()
    if not _done.wait_blocking(TIMEOUT):
        raise TimeoutError(f"huey ran {_done.count} of {n}")
    e2e = time.perf_counter() - t0
    c.stop(graceful=True)
    huey.storage.close()
    return Phases(enqueue, drain, e2e)


async def huey(cfg: Config, n: int) -> Phases:
    path = cfg.workdir / f"huey-{uuid.uuid4().hex[:8]}.sqlite3"
    try:
        return await asyncio.to_thread(_huey_round, path, n)
    finally:
        unlink_sqlite(path)


def _persist_queue_round(path: Path, n: int) -> Phases:
    from persistqueue import SQLiteAckQueue
    from persistqueue.exceptions import Empty

    queue = SQLiteAckQueue(str(path), multithreading=True, auto_commit=True)
    stop = threading.Event()
    done = [Countdown(n)]

    def consume() -> None:
        while not stop.is_set():
            try:
                item = queue.get(block=True, timeout=0.05)
            except Empty:
                continue
            done[0].hit()  # the no-op job
            queue.ack(item)

    def produce() -> None:
        for i in range(n):
            queue.put({"task": "noop", "vip": bool(i % VIP_EVERY)})  # no priorities: FIFO

    t0 = time.perf_counter()
    produce()
    enqueue = time.perf_counter() - t0

    threads = [threading.Thread(target=consume, daemon=True) for _ in range(PERSIST_QUEUE_THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    if not done[0].wait_blocking(TIMEOUT):
        raise TimeoutError(f"persist-queue drained {done[0].count} of {n}")
    drain = time.perf_counter() - t0

    done[0] = Countdown(n)
    t0 = time.perf_counter()
    produce()
    if not done[0].wait_blocking(TIMEOUT):
        raise TimeoutError(f"persist-queue ran {done[0].count} of {n}")
    e2e = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join()
    return Phases(enqueue, drain, e2e)


async def persist_queue(cfg: Config, n: int) -> Phases:
    path = cfg.workdir / f"persistq-{uuid.uuid4().hex[:8]}"
    try:
        return await asyncio.to_thread(_persist_queue_round, path, n)
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
