"""The W1 enqueue phase of quart-jobs SQLite alone (no worker), for a profiler to look at.

    .venv/bin/python -m bench.tools.enqueue_profile 5000 --producers 1 --synchronous FULL
    py-spy record --threads --idle --format raw -o var/enqueue.txt -- \\
        .venv/bin/python -m bench.tools.enqueue_profile 5000 --producers 100
    .venv/bin/python -m bench.tools.enqueue_profile 5000 --pyinstrument   # the event-loop thread

``--synchronous NORMAL`` takes the fsync out: what is left is the CPU and the thread hops of an
enqueue. Each line printed is one run: jobs per second of the enqueue phase and the process's
CPU time (every thread) per enqueue.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from ..workloads.throughput import qj_noop
from ..workloads.w1_shape import VIP_EVERY


async def enqueue_phase(
    workdir: Path, n: int, producers: int, synchronous: str
) -> tuple[float, float]:
    """Wall seconds and process CPU seconds (all threads) of enqueueing ``n`` jobs."""
    from quart_jobs import Jobs

    path = workdir / f"qj-{uuid.uuid4().hex[:8]}.sqlite3"
    jobs = Jobs(f"sqlite:///{path}", backend_options={"synchronous": synchronous})
    async with jobs:
        task = jobs.task(qj_noop)
        vip = jobs.options(priority="vip")
        regular = jobs.options()

        async def producer(k: int) -> None:
            for i in range(k, n, producers):
                await (vip if i % VIP_EVERY else regular).enqueue(task)

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(producer(k) for k in range(producers)))
        return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=5000)
    parser.add_argument("--producers", type=int, default=1)
    parser.add_argument("--synchronous", default="FULL")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--pyinstrument", action="store_true")
    args = parser.parse_args()
    profiler = None
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="enabled")
        profiler.start()
    with tempfile.TemporaryDirectory(prefix="quart-jobs-profile-") as tmp:
        for _ in range(args.repeat):
            seconds, cpu = asyncio.run(
                enqueue_phase(Path(tmp), args.n, args.producers, args.synchronous)
            )
            print(
                f"n={args.n} producers={args.producers} {args.synchronous}: "
                f"enqueue {args.n / seconds:,.0f}/s, CPU {cpu / args.n * 1e6:.0f} us per enqueue",
                flush=True,
            )
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
