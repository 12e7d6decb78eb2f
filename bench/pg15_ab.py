"""Issue 15, PostgreSQL: an A/B of the W1 PostgreSQL rows in one sitting, interleaved.

    python -m bench.pg15_ab --src A=/tmp/base/src --src B=src --rounds 3 [--n 5000]

Each round runs, for each ``--src`` in turn (a fresh process with that ``quart_jobs`` first on
``sys.path``), the raw 1-row insert reference, quart-jobs PostgreSQL with one producer and with
100 producers, and (with ``--procrastinate``) procrastinate; it prints one line per run and the
medians with the ratios of the targets at the end.
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
    "raw": lambda c, n: w1.raw_postgres(c, n),
    "qj1": lambda c, n: w1.qj_postgres(c, n),
    "qj100": lambda c, n: w1.qj_postgres(c, n, w1.PRODUCERS),
    "procrastinate": lambda c, n: w1.procrastinate(c, n),
}


def one(name: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        phases = asyncio.run(RUNS[name](Config(workdir=Path(tmp)), n))
    rates = {k: (n / v if v else None) for k, v in asdict(phases).items()}
    print(json.dumps(rates))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", action="append", default=[], help="LABEL=PATH to a src dir")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--procrastinate", action="store_true")
    parser.add_argument("--runs", default="qj1,qj100", help="of qj1,qj100")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.n)
        return
    results: dict[tuple[str, str], list[dict[str, float | None]]] = {}
    raw_now = 0.0
    for rnd in range(args.rounds):
        jobs = []
        for run in args.runs.split(","):
            jobs += [("ref", "raw")] + [(s, run) for s in args.src]
        if args.procrastinate:
            jobs.append(("ref", "procrastinate"))
        for src, run in jobs:
            env = dict(os.environ)
            if src != "ref":
                label, path = src.split("=", 1)
                env["PYTHONPATH"] = str(Path(path).resolve())
            n = 1500 if run == "procrastinate" else args.n
            out = (
                subprocess.run(
                    [sys.executable, "-m", "bench.pg15_ab", "--one", run, "--n", str(n)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            rates = json.loads(out)
            results.setdefault((src.split("=")[0], run), []).append(rates)
            shown = ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items() if v)
            if run == "raw":
                raw_now = rates["enqueue"] or 0.0
            elif run == "qj1" and raw_now:
                shown += f" ({(rates['enqueue'] or 0.0) / raw_now:.2f}x the raw insert just before)"
            print(f"round {rnd + 1} {src.split('=')[0]} {run}: {shown}", flush=True)
    med: dict[tuple[str, str, str], float] = {}
    for (src, run), rows in sorted(results.items()):
        for k in ("enqueue", "drain", "e2e"):
            vals = [r[k] for r in rows if r.get(k)]
            if vals:
                med[(src, run, k)] = statistics.median(vals)
                print(
                    f"median {src} {run} {k}: {med[(src, run, k)]:,.0f}/s "
                    f"(min {min(vals):,.0f}, max {max(vals):,.0f})"
                )
    raw = med.get(("ref", "raw", "enqueue"))
    proc = med.get(("ref", "procrastinate", "e2e"))
    for s in args.src:
        label = s.split("=")[0]
        ours = med.get((label, "qj1", "enqueue"))
        if ours and raw:
            print(f"{label}: 1 producer enqueue / raw 1-row insert = {ours / raw:.2f}x")
        many = med.get((label, "qj100", "e2e"))
        if many and proc:
            print(f"{label}: 100 producers e2e / procrastinate e2e = {many / proc:.2f}x")


if __name__ == "__main__":
    main()
