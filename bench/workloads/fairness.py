"""W6 fairness: the regular tier's share under a VIP flood, and carol's wait behind bob.

*Share*: 200 regular and 2,000 VIP no-op jobs queued (regular first), then a worker with
concurrency 1 (and 4) runs until 500 jobs have started; the number is the fraction of those
starts that were regular jobs. With the default weights (VIP 9, regular 1) the target is at
least 1/(9+1) = 10 %; with strict priority (``weights={0: inf, 10: 1}``) it is 0 %.

*Carol*: 2,000 regular jobs of owner ``bob`` queued, then one of owner ``carol``; a worker with
concurrency 1 runs until carol's job starts. The numbers are how many jobs started before hers
(round-robin between owners: ~1) and the seconds from the worker's start to hers.

Both run on memory, SQLite (FULL) and PostgreSQL (a fresh database per round).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from ..common import Config, Measurement, fresh_database, not_run, one_line, pg_available

WORKLOAD = "W6 fairness"
VIP_BACKLOG = 2_000
REGULAR_BACKLOG = 200
STARTS = 500
BOB_BACKLOG = 2_000
TIMEOUT = 120.0
STRICT: Mapping[int, float] = {0: math.inf, 10: 1.0}

# Labels of the jobs in the order they started, and the event set when enough have started.
_starts: list[str] = []
_target = 0
_enough: asyncio.Event | None = None


def _started(label: str) -> None:
    _starts.append(label)
    if _enough is not None and (len(_starts) >= _target or label == "carol"):
        _enough.set()


async def fair_job(label: str) -> None:
    _started(label)


def _reset(target: int) -> asyncio.Event:
    global _target, _enough
    _starts.clear()
    _target = target
    _enough = asyncio.Event()
    return _enough


@contextlib.asynccontextmanager
async def _store(cfg: Config, backend: str) -> AsyncIterator[str]:
    if backend == "memory":
        yield "memory://"
    elif backend == "SQLite":
        path = cfg.workdir / f"w6-{uuid.uuid4().hex[:8]}.sqlite3"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
    else:
        async with fresh_database(f"qj_bench_w6_{uuid.uuid4().hex[:8]}") as url:
            yield url


async def _enqueue(jobs: Any, task: Any, label: str, count: int, **opts: Any) -> None:
    options = jobs.options(**opts).settings  # the public way to options for enqueue_many
    for start in range(0, count, 500):
        n = min(500, count - start)
        await jobs.enqueue_many([(task, (label,), {})] * n, options)


async def regular_share(
    url: str,
    concurrency: int,
    weights: Mapping[int, float] | None,
    starts: int,
    backlogs: tuple[int, int] = (VIP_BACKLOG, REGULAR_BACKLOG),
) -> float:
    """The regular tier's share of the first ``starts`` starts, with ``backlogs`` (VIP,
    regular) queued, regular first."""
    from quart_jobs import Jobs

    jobs = Jobs(url, weights=weights)
    task = jobs.task(fair_job)
    enough = _reset(starts)
    async with jobs:
        await _enqueue(jobs, task, "regular", backlogs[1], priority="regular")
        await _enqueue(jobs, task, "vip", backlogs[0], priority="vip")
        async with jobs.run_worker(concurrency=concurrency):
            await asyncio.wait_for(enough.wait(), TIMEOUT)
    first = _starts[:starts]
    return first.count("regular") / len(first)


async def carol_wait(url: str, backlog: int) -> tuple[float, float]:
    from quart_jobs import Jobs

    jobs = Jobs(url)
    task = jobs.task(fair_job)
    enough = _reset(backlog + 1)
    async with jobs:
        await _enqueue(jobs, task, "bob", backlog, owner="bob")
        await _enqueue(jobs, task, "carol", 1, owner="carol")
        t0 = time.perf_counter()
        async with jobs.run_worker(concurrency=1):
            await asyncio.wait_for(enough.wait(), TIMEOUT)
            seconds = time.perf_counter() - t0
    return float(_starts.index("carol")), seconds


BACKENDS = ("memory", "SQLite", "PostgreSQL")
SHARE_CASES: list[tuple[str, int, Mapping[int, float] | None]] = [
    ("VIP weight 9", 1, None),
    ("VIP weight 9", 4, None),
    ("strict priority", 1, STRICT),
]


async def run(cfg: Config, log: Callable[[str], None]) -> list[Measurement]:
    starts = cfg.size(STARTS, 100, 10)
    backlog = cfg.size(BOB_BACKLOG, 400, 10)
    backlogs = (
        cfg.size(VIP_BACKLOG, VIP_BACKLOG, 20),
        cfg.size(REGULAR_BACKLOG, REGULAR_BACKLOG, 2),
    )
    rows: dict[tuple[str, str], Measurement] = {}
    failed: dict[str, str] = {}
    pg_missing = pg_available()

    def add(system: str, metric: str, value: float, n: int, note: str, higher: bool) -> None:
        row = rows.get((system, metric))
        if row is None:
            row = rows[(system, metric)] = Measurement(
                WORKLOAD, system, metric, "", n=n, note=note, higher_is_better=higher
            )
        row.values.append(value)

    for rnd in range(cfg.rounds):
        for backend in BACKENDS:
            if backend == "PostgreSQL" and pg_missing:
                failed.setdefault(backend, pg_missing)
            if backend in failed:
                continue
            try:
                for label, conc, weights in SHARE_CASES:
                    async with _store(cfg, backend) as url:
                        share = await regular_share(url, conc, weights, starts, backlogs)
                    system = f"quart-jobs {backend}, {label}, concurrency {conc}"
                    note = f"{backlogs[0]:,} VIP + {backlogs[1]} regular queued"
                    add(system, "regular share of starts %", share * 100, starts, note, True)
                    log(f"  round {rnd + 1}/{cfg.rounds} {system}: regular {share:.1%}")
                async with _store(cfg, backend) as url:
                    before, seconds = await carol_wait(url, backlog)
                system = f"quart-jobs {backend}, carol behind bob, concurrency 1"
                note = f"1 job of carol after {backlog:,} of bob"
                add(system, "starts before carol's", before, backlog, note, False)
                add(system, "carol's wait ms", seconds * 1000, backlog, note, False)
                log(
                    f"  round {rnd + 1}/{cfg.rounds} {system}: {before:.0f} starts, {seconds:.3f} s"
                )
            except Exception as exc:
                failed[backend] = f"failed: {one_line(exc)}"
                log(f"  {backend}: {failed[backend]}")
    out = [m for m in rows.values() if not any(b in m.system for b in failed)]
    for backend, reason in failed.items():
        out.append(not_run(WORKLOAD, f"quart-jobs {backend}", "regular share of starts %", reason))
    return out


def ratios(rows: list[Measurement]) -> list[str]:
    """The goal: the regular tier keeps >= 1/(W+1) of the starts at VIP weight W = 9."""
    out: list[str] = []
    for m in rows:
        if m.workload != WORKLOAD or not m.ok:
            continue
        if "weight 9" in m.system:
            verdict = "MET" if min(m.values) >= 10.0 else "MISSED"
            out.append(
                f"target W6 {m.system}: regular share >= 10 %: {m.median:.1f} % "
                f"(min {min(m.values):.1f} %) {verdict}"
            )
        elif "carol" in m.system and m.metric.startswith("starts"):
            out.append(f"W6 {m.system}: {m.median:.0f} starts before carol's job")
    return out
