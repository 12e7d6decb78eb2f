"""Intake flood: how many orders the embedded worker finishes while wrk floods ``POST /orders``.

``python -m bench.tools.intake_flood [--seconds 10] [--rounds 1] [--env KEY=VALUE ...]
[--worker] [--processing-seconds S]``: runs ``orders serve`` (uvicorn, a fresh SQLite file,
``ORDERS_DEMO=1``, quotas raised, its embedded worker; ``--env`` sets its settings, e.g.
``WEB_PROCESSES=2`` or ``EMBEDDED_WORKERS=0``; ``--worker`` runs an ``orders worker`` process
beside it) under ``wrk -t1 -c64 -d10s`` posting orders of ``S`` seconds (0: instant ones), then
counts in the database the jobs finished during the flood (read the moment wrk exits) against
the orders accepted (2xx answers), and once all are completed, W3's "accepted and completed
orders/s" (accepted orders over the time from the first one's acceptance to the last one's end).
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..workloads.http_intake import (
    CONNECTIONS,
    FLOOD_RATE,
    LUA,
    ORDERS,
    _command,
    _flood,
    _free_port,
    _wait_port,
    parse_wrk,
)


def _counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT state, count(*) FROM qj_jobs GROUP BY state").fetchall()
    finally:
        conn.close()
    return {str(s): int(n) for s, n in rows}


def one_round(
    seconds: int, workdir: Path, extra: dict[str, str], worker: bool, processing: float = 0.0
) -> dict[str, float]:
    port = _free_port()
    cmd, env = _command(ORDERS, port, workdir)
    env |= extra
    db = Path(env["DATABASE_URL"].removeprefix("sqlite:///"))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    side = None
    try:
        if worker:
            _wait_port(port, proc)
            side = subprocess.Popen(
                [*cmd[:2], "from order_service.cli import main; main()", "worker"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        _wait_port(port, proc)
        time.sleep(1.0)
        lua = workdir / "post.lua"
        # Orders of 0 s complete with their job's success; others write `processing` first.
        lua.write_text(
            LUA.replace('"processing_seconds": 0}', f'"processing_seconds": {processing}}}')
        )
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                "--latency",
                f"-c{CONNECTIONS}",
                f"-d{seconds}s",
                "-s",
                str(lua),
                f"http://127.0.0.1:{port}/orders",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        counts = _counts(db)
        wrk = parse_wrk(out)
        flood = _flood(db)  # waits until every accepted order completed
        accepted = round(wrk["requests/s"] * seconds)
        done = sum(n for s, n in counts.items() if s not in ("queued", "running"))
        return {
            "requests/s": wrk["requests/s"],
            "p99 ms": wrk.get("p99 ms", float("nan")),
            "accepted~": accepted,
            "jobs": sum(counts.values()),
            "finished": done,
            "queued": counts.get("queued", 0),
            "running": counts.get("running", 0),
            "accepted and completed/s": round(flood[FLOOD_RATE]),
        }
    finally:
        for p in (side, proc):
            if p is not None:
                p.terminate()
                p.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--worker", action="store_true", help="an `orders worker` beside it")
    parser.add_argument("--processing-seconds", type=float, default=0.0, help="of each order")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            print(
                one_round(args.seconds, Path(tmp), extra, args.worker, args.processing_seconds),
                flush=True,
            )
    sys.exit(0)


if __name__ == "__main__":
    main()
