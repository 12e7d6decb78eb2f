"""What a ``/metrics`` scrape costs with a big jobs table, and what it does to the API's reads.

    python -m bench.tools.metrics_scrape                      # 400,000 jobs, this checkout's orders
    python -m bench.tools.metrics_scrape --orders /other/.venv/bin/orders --jobs 100000

Starts ``orders serve`` (SQLite, no embedded worker) on a fresh database, places one order as
the demo VIP customer (``GET /orders/1``), then fills the jobs table with direct INSERTs
(mostly finished jobs, ``--queued`` of them queued) and measures, over real HTTP:

* the database queries behind the gauges, run directly (the old full-table ``GROUP BY`` and
  the partial-index queries ``/metrics`` uses now);
* ``GET /metrics`` alone (sequential scrapes);
* ``GET /orders/1`` alone, then while ``--scrapers`` clients loop on ``/metrics``.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from quart_jobs.backends.sqlite import statements as sqlite_sql

VIP = {"Authorization": "Bearer demo-vip-key"}
METRICS_TOKEN = "bench-metrics-token-0123456789"
OLD_STATS = "SELECT state, priority, COUNT(*) FROM qj_jobs GROUP BY state, priority"
GAUGES = (sqlite_sql.QUEUED_GAUGES, sqlite_sql.RUNNING_GAUGES)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill(db: Path, jobs: int, queued: int) -> None:
    """``jobs`` rows: ``queued`` queued, the rest succeeded (a few failed), in 10k batches."""
    conn = sqlite3.connect(db, timeout=30)
    now = time.time()
    states = ["queued"] * queued + ["succeeded"] * (jobs - queued)
    random.Random(1).shuffle(states)
    sql = (
        "INSERT INTO qj_jobs (task, args, kwargs, priority, state, attempts, max_attempts, "
        "enqueued_at, run_at, owner, started_at, finished_at) "
        "VALUES ('orders.process', '[]', '{}', ?, ?, 1, 5, ?, ?, 'bob', ?, ?)"
    )
    for start in range(0, jobs, 10_000):
        rows = []
        for i, state in enumerate(states[start : start + 10_000], start):
            at = now - jobs + i
            done = None if state == "queued" else at + 1
            rows.append((10 if i % 3 else 0, state, at, at, done, done))
        with conn:
            conn.executemany(sql, rows)
    conn.close()


def timed(func: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        func()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(ms: list[float]) -> str:
    ms = sorted(ms)
    return f"median {statistics.median(ms):.1f} ms, p95 {ms[int(len(ms) * 0.95) - 1]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", default=str(Path(sys.executable).parent / "orders"))
    parser.add_argument("--jobs", type=int, default=400_000)
    parser.add_argument("--queued", type=int, default=1_000)
    parser.add_argument("--scrapers", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="metrics-bench-"))
    db = work / "orders.sqlite3"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "QUART_"))}
    env |= {
        "DATABASE_URL": f"sqlite:///{db}",
        "ORDERS_DEMO": "1",
        "EMBEDDED_WORKERS": "0",
        "PORT": str(port),
        "METRICS_TOKEN": METRICS_TOKEN,
        "MAX_QUEUED": "10000000",
        "MAX_QUEUED_PER_CUSTOMER": "10000000",
    }
    log = open(work / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([args.orders, "serve"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    # Old versions have no METRICS_TOKEN: the header is then ignored.
    metrics_headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(300):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            order = {"items": [{"sku": "A-1", "quantity": 1}], "processing_seconds": 0}
            assert client.post("/orders", json=order, headers=VIP).status_code == 202
            t0 = time.perf_counter()
            fill(db, args.jobs, args.queued)
            print(
                f"{args.orders}: {args.jobs:,} jobs ({args.queued:,} queued) inserted in "
                f"{time.perf_counter() - t0:.1f} s"
            )

            conn = sqlite3.connect(db)
            print(
                f"old stats query (GROUP BY over the table): "
                f"{summary(timed(lambda: conn.execute(OLD_STATS).fetchall(), 5))}"
            )
            print(
                "gauge queries (partial indexes):            "
                f"{summary(timed(lambda: [conn.execute(q).fetchall() for q in GAUGES], 20))}"
            )
            conn.close()

            scrape = client.get("/metrics", headers=metrics_headers)
            assert scrape.status_code == 200, scrape.text
            print(
                f"GET /metrics alone:                         "
                f"{summary(timed(lambda: client.get('/metrics', headers=metrics_headers), 50))}"
            )

            def read() -> httpx.Response:
                return client.get("/orders/1", headers=VIP)

            assert read().status_code == 200
            print(
                f"GET /orders/1 alone:                        {summary(timed(read, args.requests))}"
            )

            stop = threading.Event()
            scrapes = [0]

            def loop() -> None:
                with httpx.Client(base_url=base, timeout=30) as own:
                    while not stop.is_set():
                        own.get("/metrics", headers=metrics_headers)
                        scrapes[0] += 1

            threads = [threading.Thread(target=loop) for _ in range(args.scrapers)]
            for t in threads:
                t.start()
            time.sleep(1)
            t0 = time.perf_counter()
            under_load = timed(read, args.requests)
            elapsed = time.perf_counter() - t0
            stop.set()
            for t in threads:
                t.join()
            print(
                f"GET /orders/1 with {args.scrapers} clients looping on /metrics: "
                f"{summary(under_load)} ({scrapes[0] / (elapsed + 1):.0f} scrapes/s)"
            )
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


if __name__ == "__main__":
    main()
