"""W1's PostgreSQL peers: procrastinate and SAQ (concurrency 32, as quart-jobs' default
rows), pgqueuer and oban-py (concurrency 10, their shape; with the server's cost per job).

oban-py needs Python 3.12 or later: it runs in a virtual environment of its own
(``BENCH_OBAN_PYTHON``, default ``.venv-oban/bin/python``, which ``make bench`` creates) as a
child process, :mod:`bench.peers.oban_child`, that reports its phases as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from ..common import Config, Countdown, Phases, fresh_database, pg_available
from ..pg_cost import server_cost
from .w1_shape import (
    PEER_ASYNC_CONCURRENCY,
    PG_PEER_CONCURRENCY,
    TIMEOUT,
    VIP_EVERY,
    async_phases,
    database_of,
    running,
)

ROOT = Path(__file__).resolve().parents[2]
OBAN_PYTHON = Path(os.environ.get("BENCH_OBAN_PYTHON", ROOT / ".venv-oban" / "bin" / "python"))
OBAN_CHILD = ROOT / "bench" / "peers" / "oban_child.py"
#: pgqueuer's worker takes jobs in batches and caps its running jobs at twice a batch or more:
#: a cap of 10 with batches of 5.
PGQUEUER_BATCH = PG_PEER_CONCURRENCY // 2


async def procrastinate(cfg: Config, n: int) -> Phases:
    import logging

    import procrastinate as pc

    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    async with fresh_database("bench_procrastinate") as url:
        app = pc.App(connector=pc.PsycopgConnector(conninfo=url))
        done = [Countdown(n)]

        async def _noop() -> None:
            done[0].hit_in_loop()

        noop = app.task(name="noop")(_noop)  # not a decorator: typed as Any here

        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            vip = noop.configure(priority=10)  # procrastinate: higher runs first
            regular = noop.configure(priority=0)

            async def produce() -> None:
                for i in range(n):
                    await (vip if i % VIP_EVERY else regular).defer_async()

            async def work() -> None:
                await app.run_worker_async(
                    concurrency=PEER_ASYNC_CONCURRENCY, wait=True, install_signal_handlers=False
                )

            return await async_phases(n, done, produce, running(work))


async def saq(cfg: Config, n: int) -> Phases:
    import logging

    from saq import Queue, Worker

    logging.getLogger("saq").setLevel(logging.ERROR)
    async with fresh_database("bench_saq") as url:
        queue = Queue.from_url(url)
        done = [Countdown(n)]

        async def noop(ctx: Any) -> None:
            done[0].hit_in_loop()

        await queue.connect()
        try:

            async def produce() -> None:
                for i in range(n):
                    await queue.enqueue("noop", priority=0 if i % VIP_EVERY else 10)

            worker = Worker(queue, functions=[("noop", noop)], concurrency=PEER_ASYNC_CONCURRENCY)
            return await async_phases(n, done, produce, running(worker.start, worker.stop))
        finally:
            await queue.disconnect()


def pgqueuer_missing() -> str | None:
    """``None`` when pgqueuer (with asyncpg, its default driver) can run, else why not."""
    try:
        import asyncpg  # noqa: F401
        import pgqueuer  # noqa: F401
    except ImportError as exc:
        return f"pgqueuer or asyncpg not installed ({exc}); pip install -e '.[bench]'"
    return pg_available()


async def pgqueuer(cfg: Config, n: int) -> Phases:
    """pgqueuer on asyncpg: the producer enqueues through ``Queries`` on a connection of its own;
    the worker is a ``QueueManager`` on another, capped at 10 running jobs. The server's cost
    runs from the first connection to the last one's close."""
    import logging

    import asyncpg
    from pgqueuer import AsyncpgDriver, QueueManager
    from pgqueuer.queries import Queries

    logging.getLogger("pgqueuer").setLevel(logging.WARNING)
    async with (
        fresh_database("bench_pgqueuer") as url,
        server_cost(database_of(url)) as probe,
    ):
        producer_conn = await asyncpg.connect(url)
        worker_conn = await asyncpg.connect(url)
        try:
            queries = Queries(AsyncpgDriver(producer_conn))
            await queries.install()
            done = [Countdown(n)]
            qm = QueueManager(Queries(AsyncpgDriver(worker_conn)))

            async def noop(job: Any) -> None:
                done[0].hit_in_loop()

            qm.entrypoint("noop")(noop)

            async def produce() -> None:
                for i in range(n):
                    await queries.enqueue("noop", None, priority=10 if i % VIP_EVERY else 0)

            async def work() -> None:
                await qm.run(batch_size=PGQUEUER_BATCH, max_concurrent_tasks=PG_PEER_CONCURRENCY)

            async def stop() -> None:
                qm.shutdown.set()

            phases = await async_phases(n, done, produce, running(work, stop))
        finally:
            await producer_conn.close()
            await worker_conn.close()
    phases.server = probe.result
    return phases


def oban_missing() -> str | None:
    """``None`` when oban-py's own Python is there to run it, else why not."""
    if not OBAN_PYTHON.exists():
        return (
            f"no Python >= 3.12 with oban at {OBAN_PYTHON} (make bench creates it; "
            "or set BENCH_OBAN_PYTHON)"
        )
    return pg_available()


async def oban(cfg: Config, n: int) -> Phases:
    """oban-py in its child process; the server's cost runs from the child's start to its
    exit (its schema, its three phases, its stop)."""
    async with (
        fresh_database("bench_oban") as url,
        server_cost(database_of(url)) as probe,
    ):
        child = await asyncio.create_subprocess_exec(
            str(OBAN_PYTHON),
            str(OBAN_CHILD),
            url,
            str(n),
            str(PG_PEER_CONCURRENCY),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert child.stdout is not None
        try:
            line = await asyncio.wait_for(child.stdout.readline(), 3 * TIMEOUT)
            if not line.startswith(b"{"):
                raise RuntimeError(f"oban child: {await _child_failure(child, line)}")
            await asyncio.wait_for(child.wait(), TIMEOUT)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
    report = json.loads(line)
    return Phases(report["enqueue"], report["drain"], report["e2e"], probe.result)


async def _child_failure(child: asyncio.subprocess.Process, line: bytes) -> str:
    """What the child said before it failed: its line, else the end of its stderr."""
    if child.returncode is None:
        child.kill()
    _, err = await child.communicate()
    text = (line.decode(errors="replace") + err.decode(errors="replace")).strip()
    return text.splitlines()[-1] if text else f"exited {child.returncode}"
