"""PostgreSQL: enqueues from K processes, one producer each awaiting every enqueue, and where
their commits wait (``pg_stat_activity`` sampled every 10 ms while they run). Part of W4
(:mod:`.pg_scale`); ``python -m bench.tools.pg_producers`` runs it alone.

The wait events are the share of samples of the producers' backends in each
``wait_event_type:wait_event``; ``CPU`` when the backend was active and not waiting, ``idle``
when it waited for its client. ``owner`` gives each process's jobs an owner of its own
(without it, every job is ownerless: one owner for fairness).
"""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


async def noop() -> None:
    """The task enqueued (never run here)."""


async def child(url: str, seconds: float, owner: str | None) -> None:
    from quart_jobs import Jobs

    jobs = Jobs(url)
    async with jobs:
        task = jobs.task(name="bench.producers.noop")(noop)
        enqueuer = jobs.options(owner=owner)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            await enqueuer.enqueue(task)
            n += 1
        print(n, flush=True)


def _sample(url: str, stop: threading.Event, seen: collections.Counter[str]) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.wait(0.01):
            rows = conn.execute(
                "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend' AND query NOT LIKE 'LISTEN%%'"
            ).fetchall()
            for state, kind, event in rows:
                if state == "idle":
                    seen["idle"] += 1
                elif kind is None:
                    seen["CPU"] += 1
                else:
                    seen[f"{kind}:{event}"] += 1


def run(url: str, processes: int, seconds: float, owner: bool) -> tuple[float, str]:
    """Enqueues per second of ``processes`` producing processes together over ``seconds``, and
    the wait events of their backends (the six most seen, with their shares)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parent.parent.parent), env.get("PYTHONPATH")) if p
    )
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.workloads.pg_producers",
                "child",
                url,
                str(seconds),
                f"owner-{k}" if owner else "",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for k in range(processes)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"producer process said {line!r} ({proc.poll()})")
        seen: collections.Counter[str] = collections.Counter()
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(url, stop, seen))
        sampler.start()
        try:
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            total = 0
            for proc in procs:
                assert proc.stdout is not None
                total += int(proc.stdout.readline())
                proc.wait()
        finally:
            stop.set()
            sampler.join()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
    samples = sum(seen.values()) or 1
    waits = ", ".join(f"{k} {v / samples:.0%}" for k, v in seen.most_common(6))
    return total / seconds, waits


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        asyncio.run(child(sys.argv[2], float(sys.argv[3]), sys.argv[4] or None))
    else:
        sys.exit("usage: python -m bench.workloads.pg_producers child URL SECONDS OWNER")
