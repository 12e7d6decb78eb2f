"""An A/B of the W1 throughput rows of one store, two versions of the library interleaved in
one sitting (a load change on a shared machine hits both alike).

    python -m bench.tools.interleaved_ab sqlite --src A=/tmp/base/src --src B=src --rounds 3 \\
        [--n 5000] [--peer]
    python -m bench.tools.interleaved_ab postgresql --src A=/tmp/base/src --src B=src [--peer]
    python -m bench.tools.interleaved_ab sqlite --one qj1 --n 20000   # one run, for a profiler

Each round runs the store's physical references (SQLite: raw 1-row FULL and 1,000-row batch
commits; PostgreSQL: raw 1-row inserts, again before each quart-jobs run), then, for each
``--src`` in turn (a fresh process with that ``quart_jobs`` first on ``sys.path``), quart-jobs
with one producer and with 100 producers, and with ``--peer`` the peer of the targets (Huey on
SQLite, procrastinate on PostgreSQL). It prints one line per run, then the medians and the
headline ratios (e2e = N / (enqueue s + drain s), the peers' W1 shape).
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
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..common import Config, Phases
from ..workloads import peers_postgres, peers_sqlite
from ..workloads import throughput as w1

Run = Callable[[Config, int], Coroutine[Any, Any, Phases]]


@dataclass(frozen=True)
class Store:
    runs: dict[str, Run]
    refs: tuple[str, ...]  # reference runs of each round
    raw_before_each: bool  # the raw reference again right before each quart-jobs run
    peer: str
    sizes: dict[str, int]


STORES = {
    "sqlite": Store(
        runs={
            "raw1": lambda c, n: w1.raw_sqlite(c, n),
            "rawbatch": lambda c, n: w1.raw_sqlite(c, n, w1.RAW_SQLITE_BATCH_ROWS),
            "qj1": lambda c, n: w1.qj_sqlite(c, n, "FULL"),
            "qj100": lambda c, n: w1.qj_sqlite_producers(c, n),
            "peer": lambda c, n: peers_sqlite.huey(c, n),
        },
        refs=("raw1", "rawbatch"),
        raw_before_each=False,
        peer="Huey",
        sizes={"raw1": 3000, "rawbatch": 100_000, "peer": 4000},
    ),
    "postgresql": Store(
        runs={
            "raw1": lambda c, n: w1.raw_postgres(c, n),
            "qj1": lambda c, n: w1.qj_postgres(c, n),
            "qj100": lambda c, n: w1.qj_postgres(c, n, w1.PRODUCERS),
            "peer": lambda c, n: peers_postgres.procrastinate(c, n),
        },
        refs=(),
        raw_before_each=True,
        peer="procrastinate",
        sizes={"peer": 1500},
    ),
}
RATES = ("enqueue", "drain", "e2e", "serial")


def one(store: str, name: str, n: int) -> None:
    """One run in this process; prints its rates as one JSON line."""
    with tempfile.TemporaryDirectory(prefix="quart-jobs-ab-") as tmp:
        phases = asyncio.run(STORES[store].runs[name](Config(workdir=Path(tmp)), n))
    rates: dict[str, float | None] = {}
    for k, v in asdict(phases).items():
        if k == "server":  # the server's cost (PostgreSQL) per job (2n jobs ran), beside
            if phases.server is not None:
                rates.update(phases.server.per_job(2 * n))
        else:
            rates[k] = n / v if v else None
    enqueue, drain = rates.get("enqueue"), rates.get("drain")
    if enqueue and drain:
        rates["serial"] = 1 / (1 / enqueue + 1 / drain)
    print(json.dumps(rates))


def _child(store: str, src: str, run: str, n: int) -> dict[str, float | None]:
    env = dict(os.environ)
    if src != "ref":
        env["PYTHONPATH"] = str(Path(src.split("=", 1)[1]).resolve())
    cmd = [sys.executable, "-m", "bench.tools.interleaved_ab", store, "--one", run, "--n", str(n)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    rates: dict[str, float | None] = json.loads(done.stdout.strip().splitlines()[-1])
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", choices=sorted(STORES))
    parser.add_argument("--src", action="append", default=[], help="LABEL=PATH to a src dir")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--peer", action="store_true", help="also the peer of the targets")
    parser.add_argument("--only", default="qj1,qj100", help="quart-jobs runs per src")
    parser.add_argument(
        "--one",
        help="one run (raw1, rawbatch, qj1, qj100, peer) in this process and no A/B: what a "
        "profiler looks at (py-spy record -- python -m bench.tools.interleaved_ab ...)",
    )
    args = parser.parse_args()
    store = STORES[args.store]
    if args.one:
        one(args.store, args.one, args.n)
        return
    ours = [r for r in args.only.split(",") if r]
    plan = [("ref", r) for r in store.refs]
    for run in ours:
        for src in args.src:
            plan += [("ref", "raw1")] if store.raw_before_each else []
            plan.append((src, run))
    if args.peer:
        plan.append(("ref", "peer"))
    results: dict[tuple[str, str], list[dict[str, float | None]]] = {}
    for rnd in range(args.rounds):
        raw_now = 0.0
        for src, run in plan:
            rates = _child(args.store, src, run, store.sizes.get(run, args.n))
            label = src.split("=")[0]
            results.setdefault((label, run), []).append(rates)
            shown = ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items() if v)
            if run == "raw1":
                raw_now = rates["enqueue"] or 0.0
            elif run == "qj1" and raw_now:
                shown += f" ({(rates['enqueue'] or 0.0) / raw_now:.2f}x the raw run before)"
            print(f"round {rnd + 1} {label} {run}: {shown}", flush=True)
    med: dict[tuple[str, str, str], float] = {}
    for (label, run), rows in sorted(results.items()):
        for k in RATES:
            vals = [v for r in rows if (v := r.get(k))]
            if vals:
                med[(label, run, k)] = statistics.median(vals)
                print(
                    f"median {label} {run} {k}: {med[(label, run, k)]:,.0f}/s "
                    f"(min {min(vals):,.0f}, max {max(vals):,.0f})"
                )
    raw1, batch = med.get(("ref", "raw1", "enqueue")), med.get(("ref", "rawbatch", "enqueue"))
    peer = med.get(("ref", "peer", "serial"))
    for src in args.src:
        label = src.split("=")[0]
        enq = med.get((label, "qj1", "enqueue"))
        if enq and raw1:
            print(f"{label}: 1 producer enqueue / raw 1-row commit = {enq / raw1:.2f}x")
        many = med.get((label, "qj100", "enqueue"))
        if many and batch:
            print(f"{label}: 100 producers enqueue / raw 1,000-row batch = {many / batch:.3f}x")
        for run in ours:
            e2e = med.get((label, run, "serial"))
            if e2e and peer:
                print(f"{label}: {run} e2e (enqueue+drain) / {store.peer} = {e2e / peer:.2f}x")


if __name__ == "__main__":
    main()
