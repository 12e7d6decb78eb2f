"""The suite ``python -m bench`` (``make bench``) runs: the product's workloads, one module each
under ``bench/workloads/``, named for what it measures. Each module has ``WORKLOAD`` (its name
in the tables), ``run(cfg, log)`` (its rows) and most a ``ratios(rows)`` (its headline ratios)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from .common import Config, Measurement
from .workloads import (
    fairness,
    http_intake,
    memory,
    pg_scale,
    throughput,
    vip_latency,
    vip_over_http,
    wakeup,
)

Runner = Callable[[Config, Callable[[str], None]], Coroutine[Any, Any, list[Measurement]]]


@dataclass(frozen=True)
class Workload:
    key: str  # the short name the tables and ``--only`` use
    name: str  # its module under bench/workloads/, also accepted by ``--only``
    title: str
    run: Runner
    needs: str = ""  # what it needs beyond the dev extra ("": nothing; it runs in the smoke test)


WORKLOADS = {
    w.key: w
    for w in (
        Workload("W1", "throughput", "throughput", throughput.run),
        Workload("W2", "vip_latency", "VIP latency", vip_latency.run),
        Workload("W3", "http_intake", "HTTP intake", http_intake.run, needs="wrk"),
        Workload("W4", "pg_scale", "PostgreSQL scale", pg_scale.run),
        Workload("W5", "wakeup", "wake-up across processes", wakeup.run),
        Workload("W6", "fairness", "fairness", fairness.run),
        Workload("W7", "vip_over_http", "VIP wait over HTTP", vip_over_http.run, needs="aiohttp"),
        Workload("MEM", "memory", "memory", memory.run, needs="psutil"),
    )
}


def chosen_workloads(only: str) -> tuple[list[Workload], list[str]]:
    """The workloads ``--only`` names (by key or module name, any case; all when empty), and
    the names it does not know."""
    by_name = {w.key.lower(): w for w in WORKLOADS.values()}
    by_name |= {w.name: w for w in WORKLOADS.values()}
    names = [n.strip().lower() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    chosen = [by_name[n] for n in names if n in by_name] or list(WORKLOADS.values())
    return chosen, unknown
