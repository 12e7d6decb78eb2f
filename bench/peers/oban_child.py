"""W1's three phases for oban-py, in a process of its own (oban-py needs Python 3.12 or later).

    .venv-oban/bin/python bench/peers/oban_child.py URL N CONCURRENCY

Installs oban's schema in the (fresh) database at URL, then runs the phases: enqueue N no-op
jobs one awaited ``enqueue`` at a time with no worker running (every second job at oban's top
priority), start a worker (one queue, CONCURRENCY jobs at a time) against that backlog, then
enqueue N more while it runs. Prints the phases' seconds as one JSON line and exits. Nothing
here imports the benchmark package: this Python has oban, not quart-jobs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

from oban import Oban, worker
from oban.schema import install

TIMEOUT = 300.0
VIP_EVERY = 2
VIP, REGULAR = 0, 9  # oban: 0 runs first

_done: list[asyncio.Event] = []
_count = [0, 0]  # done so far, target


def _hit() -> None:
    _count[0] += 1
    if _count[0] == _count[1]:
        _done[0].set()


def _expect(n: int) -> None:
    _count[:] = [0, n]
    _done[:] = [asyncio.Event()]


class _Noop:
    async def process(self, job: Any) -> None:
        _hit()


Noop = worker(queue="default")(_Noop)  # not a decorator: oban is untyped here


async def main(url: str, n: int, concurrency: int) -> None:
    logging.getLogger("oban").setLevel(logging.WARNING)
    pool = await Oban.create_pool(url, min_size=1, max_size=concurrency + 2)
    try:
        await install(pool)

        async def produce(client: Any) -> None:
            for i in range(n):
                await client.enqueue(Noop.new({}, priority=VIP if i % VIP_EVERY else REGULAR))

        async with Oban(pool=pool, name="bench-client") as client:
            t0 = time.perf_counter()
            await produce(client)
            enqueue = time.perf_counter() - t0

            _expect(n)
            t0 = time.perf_counter()
            async with Oban(pool=pool, name="bench-worker", queues={"default": concurrency}):
                await asyncio.wait_for(_done[0].wait(), TIMEOUT)
                drain = time.perf_counter() - t0

                _expect(n)
                t0 = time.perf_counter()
                await produce(client)
                await asyncio.wait_for(_done[0].wait(), TIMEOUT)
                e2e = time.perf_counter() - t0
    finally:
        await pool.close()
    print(json.dumps({"enqueue": enqueue, "drain": drain, "e2e": e2e}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
