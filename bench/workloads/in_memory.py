"""W1's in-memory rows: the ceiling (an ``asyncio.PriorityQueue`` and worker tasks, nothing
durable) and Quart's ``add_background_task``."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..common import Config, Countdown, Phases
from .w1_shape import QJ_CONCURRENCY, TIMEOUT, VIP_EVERY, async_phases, running


@dataclass(order=True, slots=True)
class PQItem:
    priority: int
    seq: int  # ties broken by arrival: FIFO within a priority
    func: Callable[[], Awaitable[None]] = field(compare=False)


async def _pq_noop() -> None:
    pass


async def priority_queue(cfg: Config, n: int) -> Phases:
    queue: asyncio.PriorityQueue[PQItem] = asyncio.PriorityQueue()
    seq = itertools.count()
    done = [Countdown(n)]

    async def worker() -> None:
        while True:
            item = await queue.get()
            try:
                await item.func()
            finally:
                queue.task_done()
                done[0].hit_in_loop()

    async def produce() -> None:
        for i in range(n):
            await queue.put(PQItem(0 if i % VIP_EVERY else 10, next(seq), _pq_noop))

    async def workers() -> None:
        await asyncio.gather(*(worker() for _ in range(QJ_CONCURRENCY)))

    return await async_phases(n, done, produce, running(workers))


async def quart_background(cfg: Config, n: int) -> Phases:
    """``app.add_background_task``: starts at once, so "drain" is the time after the last add."""
    from quart import Quart

    app = Quart("bench_background")
    done = Countdown(n)

    async def job() -> None:
        done.hit_in_loop()

    async with app.test_app():
        t0 = time.perf_counter()
        for _ in range(n):
            app.add_background_task(job)
        enqueue = time.perf_counter() - t0
        await done.wait(TIMEOUT)
        e2e = time.perf_counter() - t0
    return Phases(enqueue, e2e - enqueue, e2e)
