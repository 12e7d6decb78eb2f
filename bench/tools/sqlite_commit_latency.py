"""SQLite: where one awaited enqueue's time goes, against raw commits of the same size.

    python -m bench.tools.sqlite_commit_latency [--n 1000]
    PYTHONPATH=/tmp/base/src python -m bench.tools.sqlite_commit_latency   # another quart_jobs

One process, one directory, ``synchronous=FULL`` everywhere; each iteration runs, in a random
order, one of each:

* ``raw``: a plain connection's 1-row ``BEGIN; INSERT; COMMIT`` (2 WAL frames: the row, the
  AUTOINCREMENT counter);
* ``raw8``: the same plus 6 one-row counter updates (8 WAL frames, as many as an enqueue);
* ``insert``: the quart-jobs INSERT alone on its schema (indexes, queued-counter trigger);
* ``sql``: quart-jobs' whole enqueue SQL (fair tag read and write) on this thread, no hops;
* ``enqueue``: ``await jobs.enqueue(task)`` (the writer thread, group commit, the hops).

Interleaving one by one puts every kind under the same moment of the shared disk; the medians
and their ratios to ``raw`` are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..workloads.throughput import RAW_SQLITE_INSERT, RAW_SQLITE_TABLE, qj_noop

QJ_INSERT = (
    "INSERT INTO qj_jobs (task, args, kwargs, priority, state, max_attempts, enqueued_at, "
    "run_at, owner, key, timeout, queue, concurrency_key, concurrency_limit, tag) "
    "VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def measure(workdir: Path, n: int) -> dict[str, list[float]]:
    from quart_jobs import Jobs
    from quart_jobs.backends.shared_sql.jobs import insert_params
    from quart_jobs.backends.sqlite import enqueue as qj_enqueue
    from quart_jobs.backends.sqlite.writer import connect

    raw = sqlite3.connect(workdir / "raw.sqlite3", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute(RAW_SQLITE_TABLE)
    for k in range(6):
        raw.execute(f"CREATE TABLE c{k} (id INTEGER PRIMARY KEY, n INTEGER)")
        raw.execute(f"INSERT INTO c{k} VALUES (1, 0)")
    direct = {}
    for name in ("insert", "sql"):
        path = workdir / f"{name}.sqlite3"
        async with Jobs(f"sqlite:///{path}"):
            pass  # the schema
        direct[name] = connect(path, synchronous="FULL", busy_timeout_ms=5000)
    jobs = Jobs(f"sqlite:///{workdir / 'enqueue.sqlite3'}")
    lat: dict[str, list[float]] = {k: [] for k in ("raw", "raw8", "insert", "sql", "enqueue")}
    async with jobs:
        task = jobs.task(qj_noop)
        new = jobs._builder.build(task)

        def raw_commit(i: int, pages: int) -> None:
            raw.execute("BEGIN")
            raw.execute(RAW_SQLITE_INSERT, ("t", 0, time.time(), time.time(), float(i)))
            for k in range(pages):
                raw.execute(f"UPDATE c{k} SET n = n + 1 WHERE id = 1")
            raw.execute("COMMIT")

        def insert(i: int) -> None:
            conn = direct["insert"]
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(QJ_INSERT, (*insert_params(new, time.time()), float(i)))
            conn.execute("COMMIT")

        def whole_sql(i: int) -> None:
            conn = direct["sql"]
            conn.execute("BEGIN IMMEDIATE")
            qj_enqueue.enqueue(conn, [new], [insert_params(new, time.time())], None)
            conn.execute("COMMIT")

        async def sync(f: Callable[[int], None], i: int) -> None:
            f(i)

        kinds: dict[str, Callable[[int], Awaitable[object]]] = {
            "raw": lambda i: sync(lambda j: raw_commit(j, 0), i),
            "raw8": lambda i: sync(lambda j: raw_commit(j, 6), i),
            "insert": lambda i: sync(insert, i),
            "sql": lambda i: sync(whole_sql, i),
            "enqueue": lambda i: jobs.enqueue(task),
        }
        order = list(kinds)
        for i in range(n):
            random.shuffle(order)
            for kind in order:
                t0 = time.perf_counter()
                await kinds[kind](i)
                lat[kind].append(time.perf_counter() - t0)
    return lat


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="quart-jobs-latency-") as tmp:
        lat = asyncio.run(measure(Path(tmp), args.n))
    base = statistics.median(lat["raw"])
    for kind, values in lat.items():
        med = statistics.median(values)
        print(
            f"{kind:8s} median {med * 1e6:7.0f} us  mean {statistics.mean(values) * 1e6:7.0f} us"
            f"  raw/{kind} {base / med:.2f}x"
        )


if __name__ == "__main__":
    main()
