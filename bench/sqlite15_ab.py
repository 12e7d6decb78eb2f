"""Issue 15, SQLite enqueue: an A/B of the W1 SQLite rows in one sitting, interleaved.

    python -m bench.sqlite15_ab --src A=/tmp/base/src --src B=src --rounds 3 [--n 5000] [--huey]

Each round runs the raw 1-row FULL and 1,000-row batch commit references, then, for each
``--src`` in turn (a fresh process with that ``quart_jobs`` first on ``sys.path``), quart-jobs
SQLite FULL with one producer and with 100 producers, and (with ``--huey``) Huey; it prints one
line per run and the medians with the ratios of the targets at the end (e2e = N / (enqueue s +
drain s), the peers' W1 shape).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from . import w1_throughput as w1
from .common import Config

RUNS = {
    "raw1": lambda c, n: w1.raw_sqlite(c, n),
    "rawbatch": lambda c, n: w1.raw_sqlite(c, n, w1.RAW_SQLITE_BATCH_ROWS),
    "qj1": lambda c, n: w1.qj_sqlite(c, n, "FULL"),
    "qj100": lambda c, n: w1.qj_sqlite_producers(c, n),
    "huey": lambda c, n: w1.huey(c, n),
}
SIZES = {"raw1": 3000, "rawbatch": 100_000, "huey": 4000}


def one(name: str, n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="quart-jobs-ab-") as tmp:
        phases = asyncio.run(RUNS[name](Config(workdir=Path(tmp)), n))
    rates = {k: (n / v if v else None) for k, v in asdict(phases).items()}
    if rates["enqueue"] and rates["drain"]:
        rates["serial"] = 1 / (1 / rates["enqueue"] + 1 / rates["drain"])
    print(json.dumps(rates))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", action="append", default=[], help="LABEL=PATH to a src dir")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--huey", action="store_true")
    parser.add_argument("--only", default="qj1,qj100", help="quart-jobs runs per src")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.n)
        return
    results: dict[tuple[str, str], list[dict[str, float | None]]] = {}
    ours = [r for r in args.only.split(",") if r]
    for rnd in range(args.rounds):
        jobs = [("ref", "raw1"), ("ref", "rawbatch")]
        jobs += [(s, r) for s in args.src for r in ours]
        if args.huey:
            jobs.append(("ref", "huey"))
        for src, run in jobs:
            env = dict(os.environ)
            if src != "ref":
                env["PYTHONPATH"] = str(Path(src.split("=", 1)[1]).resolve())
            n = SIZES.get(run, args.n)
            cmd = [sys.executable, "-m", "bench.sqlite15_ab", "--one", run, "--n", str(n)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            rates = json.loads(done.stdout.strip().splitlines()[-1])
            results.setdefault((src.split("=")[0], run), []).append(rates)
            shown = ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items() if v)
            print(f"round {rnd + 1} {src.split('=')[0]} {run}: {shown}", flush=True)
    med: dict[tuple[str, str, str], float] = {}
    for (src, run), rows in sorted(results.items()):
        for k in ("enqueue", "drain", "e2e", "serial"):
            vals = [v for r in rows if (v := r.get(k))]
            if vals:
                med[(src, run, k)] = statistics.median(vals)
                print(
                    f"median {src} {run} {k}: {med[(src, run, k)]:,.0f}/s "
                    f"(min {min(vals):,.0f}, max {max(vals):,.0f})"
                )
    raw1 = med.get(("ref", "raw1", "enqueue"))
    batch = med.get(("ref", "rawbatch", "enqueue"))
    huey = med.get(("ref", "huey", "serial"))
    for s in args.src:
        label = s.split("=")[0]
        enq = med.get((label, "qj1", "enqueue"))
        if enq and raw1:
            print(f"{label}: 1 producer enqueue / raw 1-row FULL = {enq / raw1:.2f}x")
        many = med.get((label, "qj100", "enqueue"))
        if many and batch:
            print(f"{label}: 100 producers enqueue / raw 1,000-row batch = {many / batch:.3f}x")
        for run in ("qj1", "qj100"):
            e2e = med.get((label, run, "serial"))
            if e2e and huey:
                print(f"{label}: {run} e2e (enqueue+drain) / Huey = {e2e / huey:.2f}x")


if __name__ == "__main__":
    main()
