"""``python -m bench``: the product's benchmark workloads (``make bench``).

    python -m bench                      # every workload, 3 rounds
    python -m bench --quick              # small sizes
    python -m bench --smoke              # the smallest sizes, one round: does everything run?
    python -m bench --only W1,W2 --rounds 5 --json var/bench.jsonl
    python -m bench --only throughput,fairness

Prints the machine, one line per round as it goes, then a table (median and min-max over the
rounds), the headline ratios (to the in-memory ceiling, the physical references and the peers;
"target" lines say whether the project's goal for that ratio is met) and the measurements as
JSON lines. The one-off tools (A/B runs, profiles) are under ``bench/tools/``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import Config, Measurement, by_key, fmt, pg_version
from .suite import WORKLOADS, chosen_workloads
from .workloads import (
    fairness,
    http_intake,
    memory,
    peers_postgres,
    pg_scale,
    throughput,
    vip_latency,
    vip_over_http,
    wakeup,
)
from .workloads.w1_shape import PG_PEER_CONCURRENCY

PEERS = (
    "quart",
    "hypercorn",
    "huey",
    "persist-queue",
    "procrastinate",
    "saq",
    "pgqueuer",
    "asyncpg",
    "aiohttp",
    "psycopg",
)


def oban_version() -> str:
    """oban-py's version in its own Python (W1 runs it there), or why there is none."""
    python = peers_postgres.OBAN_PYTHON
    if not python.exists():
        return "not installed"
    try:
        return subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('oban'))"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not installed"


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb: float | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions = {}
    for name in PEERS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["oban"] = oban_version()
    commit = "?"
    try:
        root = Path(__file__).resolve().parent.parent
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if dirty:
            commit += " (src modified)"
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "record": "machine",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version(),
        "quart_jobs_commit": commit,
        "packages": versions,
        "wrk": shutil.which("wrk") or "not installed",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def table(rows: list[Measurement]) -> str:
    header = ("workload", "system", "metric", "median", "min-max", "n", "note")
    lines: list[tuple[str, ...]] = [header]
    for m in rows:
        if m.ok:
            spread = f"{fmt(min(m.values))}-{fmt(max(m.values))}"
            lines.append(
                (
                    m.workload,
                    m.system,
                    m.metric,
                    fmt(m.median),
                    spread,
                    "" if m.n is None else f"{m.n:,}",
                    m.note,
                )
            )
        else:
            lines.append((m.workload, m.system, m.metric, "n/a", "", "", f"not run: {m.reason}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = []
    for i, line in enumerate(lines):
        cells = [line[j].ljust(widths[j]) for j in range(len(widths))]
        out.append(" | ".join([*cells, line[-1]]).rstrip())
        if i == 0:
            out.append("-+-".join("-" * w for w in widths) + "-+-" + "-" * 20)
    return "\n".join(out)


SHORT = {
    "Huey SqliteHuey": "Huey",
    "persist-queue SQLiteAckQueue": "persist-queue",
    "Quart add_background_task": "add_background_task",
    "procrastinate (PostgreSQL)": "procrastinate",
    "SAQ (PostgreSQL)": "SAQ",
    throughput.PGQUEUER: "pgqueuer",
    throughput.OBAN: "oban-py",
}


def serial_e2e(enqueue: float | None, drain: float | None) -> float | None:
    """N / (enqueue s + drain s) from the two rates: end to end in the shape the peers are
    measured in (enqueue N with no worker, then drain them)."""
    return 1 / (1 / enqueue + 1 / drain) if enqueue and drain else None


def sqlite_targets(get: Callable[[str, str, str], float | None]) -> list[str]:
    """The SQLite goals (the enqueue against the raw commits, e2e against Huey), from this
    run's medians."""
    w1 = throughput.WORKLOAD
    out: list[str] = []

    def verdict(ratio: float, target: float) -> str:
        return f"{ratio:.2f}x {'MET' if ratio >= target else 'MISSED'}"

    raw1 = get(w1, throughput.RAW_SQLITE_1, "enqueue jobs/s")
    raw_batch = get(w1, throughput.RAW_SQLITE_BATCH, "enqueue jobs/s")
    one = "quart-jobs SQLite FULL"
    many = f"quart-jobs SQLite FULL, {throughput.PRODUCERS} producers"
    enqueue = get(w1, one, "enqueue jobs/s")
    if enqueue and raw1:
        out.append(
            f"target SQLite 1 producer enqueue >= 0.8x raw 1-row FULL: "
            f"{verdict(enqueue / raw1, 0.8)} ({enqueue:,.0f}/s vs {raw1:,.0f}/s)"
        )
    huey = serial_e2e(
        get(w1, "Huey SqliteHuey", "enqueue jobs/s"), get(w1, "Huey SqliteHuey", "drain jobs/s")
    )
    for name, label, target in (
        (one, "", 2.0),
        (many, f" {throughput.PRODUCERS} producers", 10.0),
    ):
        e2e = serial_e2e(get(w1, name, "enqueue jobs/s"), get(w1, name, "drain jobs/s"))
        if e2e and huey:
            out.append(
                f"target SQLite{label} e2e >= {target:.0f}x Huey: {verdict(e2e / huey, target)} "
                f"({e2e:,.0f}/s vs {huey:,.0f}/s; e2e = N / (enqueue s + drain s))"
            )
    many_enqueue = get(w1, many, "enqueue jobs/s")
    if many_enqueue and raw_batch:
        out.append(
            f"SQLite {throughput.PRODUCERS} producers enqueue = "
            f"{many_enqueue / raw_batch:.3f}x raw {throughput.RAW_SQLITE_BATCH_ROWS:,}-row "
            f"batch commits ({many_enqueue:,.0f}/s vs {raw_batch:,.0f} rows/s)"
        )
    return out


def ratios(rows: list[Measurement]) -> list[str]:
    """The headline ratios, from this run's medians."""
    k = by_key(rows)
    out: list[str] = []

    def get(workload: str, system: str, metric: str) -> float | None:
        m = k.get((workload, system, metric))
        return m.median if m is not None and m.ok else None

    w1 = throughput.WORKLOAD
    ceiling = "asyncio.PriorityQueue (ceiling)"
    peers = (
        "Huey SqliteHuey",
        "persist-queue SQLiteAckQueue",
        "Quart add_background_task",
        "procrastinate (PostgreSQL)",
        "SAQ (PostgreSQL)",
        throughput.PGQUEUER,
        throughput.OBAN,
    )
    for ours in (
        "quart-jobs SQLite FULL",
        "quart-jobs SQLite NORMAL",
        f"quart-jobs SQLite FULL, {throughput.PRODUCERS} producers",
        "quart-jobs PostgreSQL",
        throughput.QJ_PG_PEER_SHAPE,
        f"quart-jobs PostgreSQL, {throughput.PRODUCERS} producers",
    ):
        for metric in ("end-to-end jobs/s", "drain jobs/s", "enqueue jobs/s"):
            value = get(w1, ours, metric)
            if value is None:
                continue
            parts = []
            top = get(w1, ceiling, metric)
            if top:
                parts.append(f"{value / top:.3f}x ceiling")
            for peer in peers:
                theirs = get(w1, peer, metric)
                if theirs:
                    parts.append(f"{value / theirs:.2f}x {SHORT[peer]}")
            out.append(f"W1 {ours} {metric.split(' ')[0]} = " + ", ".join(parts))
    out.extend(sqlite_targets(get))
    top = get(w1, ceiling, "end-to-end jobs/s")
    huey = get(w1, "Huey SqliteHuey", "end-to-end jobs/s")
    proc = get(w1, "procrastinate (PostgreSQL)", "end-to-end jobs/s")
    for producers in ("", f", {throughput.PRODUCERS} producers"):
        full = get(w1, f"quart-jobs SQLite FULL{producers}", "end-to-end jobs/s")
        if full and top and huey:
            out.append(
                f"target W1 SQLite{producers} e2e >= 0.10x ceiling: {full / top:.3f}x "
                f"{'MET' if full / top >= 0.10 else 'MISSED'}; >= 10x Huey: {full / huey:.2f}x "
                f"{'MET' if full / huey >= 10 else 'MISSED'}"
            )
        pg = get(w1, f"quart-jobs PostgreSQL{producers}", "end-to-end jobs/s")
        if pg and proc:
            out.append(
                f"target W1 PostgreSQL{producers} >= 10x procrastinate: {pg / proc:.2f}x "
                f"{'MET' if pg / proc >= 10 else 'MISSED'}"
            )
    out.extend(postgres_targets(get))
    w2 = vip_latency.WORKLOAD
    ours_w2 = get(w2, "quart-jobs SQLite FULL", "VIP wait median ms")
    pq_w2 = get(w2, ceiling, "VIP wait median ms")
    huey_w2 = get(w2, "Huey SqliteHuey", "VIP wait median ms")
    if ours_w2 and pq_w2:
        line = (
            f"target W2 VIP wait median <= 1.1x asyncio.PriorityQueue: {ours_w2 / pq_w2:.2f}x "
            f"{'MET' if ours_w2 / pq_w2 <= 1.1 else 'MISSED'}"
        )
        if huey_w2:
            line += f" (Huey: {huey_w2 / pq_w2:.2f}x)"
        strict_w2 = get(w2, "quart-jobs SQLite FULL, strict priority", "VIP wait median ms")
        if strict_w2:
            line += f"; with strict priority: {strict_w2 / pq_w2:.2f}x"
        out.append(line)
    for m in rows:
        if m.workload == memory.WORKLOAD and m.ok and "backlog queued" in m.metric:
            out.append(
                f"target memory <= {memory.TARGET_MB:.0f} MB RSS at {m.n:,} queued: "
                f"{m.median:.1f} MB {'MET' if m.median <= memory.TARGET_MB else 'MISSED'}"
            )
    for m in rows:
        if m.workload == http_intake.WORKLOAD and not m.ok:
            out.append(f"target W3: not measured ({m.reason})")
            break
    for m in rows:
        if m.workload == pg_scale.WORKLOAD and not m.ok:
            out.append(f"W4: not measured ({m.reason})")
            break
    out.extend(http_intake.ratios(rows))
    out.extend(pg_scale.ratios(rows))
    out.extend(wakeup.ratios(rows))
    out.extend(fairness.ratios(rows))
    out.extend(vip_over_http.ratios(rows))
    return out


def postgres_targets(get: Callable[[str, str, str], float | None]) -> list[str]:
    """The PostgreSQL goals (the enqueue against raw inserts, e2e against procrastinate), from
    this run's medians."""
    w1 = throughput.WORKLOAD
    out: list[str] = []
    ours = get(w1, "quart-jobs PostgreSQL", "enqueue jobs/s")
    raw = get(w1, throughput.RAW_PG, "enqueue jobs/s")
    if ours and raw:
        out.append(
            f"target PostgreSQL 1 producer enqueue >= 0.7x raw 1-row insert: {ours / raw:.2f}x "
            f"{'MET' if ours / raw >= 0.7 else 'MISSED'} ({ours:,.0f}/s vs {raw:,.0f}/s)"
        )
    out.extend(pg_peer_targets(get))
    many = get(w1, f"quart-jobs PostgreSQL, {throughput.PRODUCERS} producers", "end-to-end jobs/s")
    proc = get(w1, "procrastinate (PostgreSQL)", "end-to-end jobs/s")
    if many and proc:
        out.append(
            f"target PostgreSQL {throughput.PRODUCERS} producers e2e >= 10x procrastinate: "
            f"{many / proc:.2f}x {'MET' if many / proc >= 10 else 'MISSED'} "
            f"({many:,.0f}/s vs {proc:,.0f}/s)"
        )
    return out


def pg_peer_targets(get: Callable[[str, str, str], float | None]) -> list[str]:
    """PostgreSQL in pgqueuer's and oban-py's shape (one producer, concurrency 10): end to end
    against the better of the two, and what each job costs the server."""
    w1 = throughput.WORKLOAD
    ours = throughput.QJ_PG_PEER_SHAPE
    out: list[str] = []
    e2e = get(w1, ours, "end-to-end jobs/s")
    peers = {
        SHORT[p]: v
        for p in (throughput.PGQUEUER, throughput.OBAN)
        if (v := get(w1, p, "end-to-end jobs/s"))
    }
    if e2e and peers:
        best = max(peers, key=lambda p: peers[p])
        ratio = e2e / peers[best]
        out.append(
            f"target PostgreSQL 1 producer, concurrency {PG_PEER_CONCURRENCY}, e2e >= 2x the "
            f"better of pgqueuer and oban-py: {ratio:.2f}x {'MET' if ratio >= 2 else 'MISSED'} "
            f"({e2e:,.0f}/s vs {best} {peers[best]:,.0f}/s)"
        )
    cpu = get(w1, ours, "server CPU us/job")
    if cpu is not None:
        out.append(
            f"target PostgreSQL server CPU <= 150 us per job (one producer, unbatched): "
            f"{cpu:.0f} us {'MET' if cpu <= 150 else 'MISSED'}"
        )
    for system in (ours, throughput.PGQUEUER, throughput.OBAN):
        cost = [get(w1, system, metric) for metric in throughput.COST_UNITS]
        if all(c is not None for c in cost):
            cpu_us, wal, commits = (c or 0.0 for c in cost)
            out.append(
                f"W1 {system} server per job: {cpu_us:.0f} us CPU, {wal:,.0f} B WAL, "
                f"{commits:.2f} commits"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="python -m bench", description=doc.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per workload (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the smallest sizes and one round: checks that every workload runs",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated workloads, by key or name: "
        + ", ".join(f"{w.key} ({w.name})" for w in WORKLOADS.values()),
    )
    parser.add_argument("--json", type=Path, help="also write the JSON lines to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    chosen, unknown = chosen_workloads(args.only)
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}: use {', '.join(WORKLOADS)}")
    rounds = 1 if args.smoke else args.rounds

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    facts = machine()
    print("machine: " + json.dumps(facts), flush=True)
    print(
        f"command: python -m bench {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip(),
        flush=True,
    )

    def log(line: str) -> None:
        print(line, flush=True)

    rows: list[Measurement] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="quart-jobs-bench-") as tmp:
        cfg = Config(rounds=rounds, quick=args.quick, smoke=args.smoke, workdir=Path(tmp))
        for workload in chosen:
            log(f"== {workload.key} {workload.title}")
            t0 = time.perf_counter()
            rows.extend(asyncio.run(workload.run(cfg, log)))
            log(f"   ({time.perf_counter() - t0:.0f}s)")

    print()
    print(table(rows))
    print()
    for line in ratios(rows):
        print(line)
    print()
    records = [facts, *(m.as_json() for m in rows)]
    for record in records:
        print(json.dumps(record))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text("".join(json.dumps(r) + "\n" for r in records))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\ntotal {time.perf_counter() - started:.0f}s; load average at the end: {load}", flush=True
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
