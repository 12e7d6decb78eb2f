"""Shared pieces of the benchmark: measurements, sizes, timing, completion counters, PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pg_cost import ServerCost

#: The PostgreSQL server the PostgreSQL rows use (``BENCH_POSTGRES_URL``): a database on it to
#: connect to; each row creates a database of its own beside it and drops it afterwards.
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test")
PG_BASE = PG_ADMIN_URL.rsplit("/", 1)[0] + "/"


@dataclass
class Config:
    """How a run is sized. ``quick``: small sizes; ``smoke``: the smallest sizes that still
    measure something, one check that every workload runs (the test suite's smoke test).
    ``peers``: also run the peer libraries (when installed); without, their rows are left out."""

    rounds: int = 3
    quick: bool = False
    workdir: Path = Path("/tmp")
    smoke: bool = False
    peers: bool = True

    def size(self, full: int, quick: int | None = None, smoke: int | None = None) -> int:
        """A count: ``full`` normally, ``quick`` (default a tenth) with ``--quick``, ``smoke``
        (default a five-thousandth, at least 2) with ``--smoke``."""
        if self.smoke:
            return smoke if smoke is not None else max(2, full // 5000)
        if self.quick:
            return quick if quick is not None else max(1, full // 10)
        return full

    def seconds(self, full: float, quick: float, smoke: float) -> float:
        """A duration (a pause, a load window) sized as :meth:`size` sizes counts."""
        return smoke if self.smoke else quick if self.quick else full


@dataclass
class Measurement:
    """One number measured over several rounds (or a row that was not measured: ``reason``)."""

    workload: str
    system: str
    metric: str
    unit: str
    values: list[float] = field(default_factory=list)
    n: int | None = None
    note: str = ""
    reason: str | None = None  # set: not measured ("n/a: <reason>")
    higher_is_better: bool = True

    @property
    def ok(self) -> bool:
        return self.reason is None and bool(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "workload": self.workload,
            "system": self.system,
            "metric": self.metric,
            "unit": self.unit,
            "n": self.n,
            "note": self.note,
        }
        if self.ok:
            data |= {
                "median": self.median,
                "min": min(self.values),
                "max": max(self.values),
                "rounds": self.values,
            }
        else:
            data["not_run"] = self.reason or "no value"
        return data


def not_run(workload: str, system: str, metric: str, reason: str, unit: str = "") -> Measurement:
    return Measurement(workload, system, metric, unit, reason=reason)


async def per_round(
    cfg: Config,
    systems: Sequence[str],
    measure: Callable[[str], dict[str, float]],
    new_row: Callable[[str, str], Measurement],
    log: Callable[[str], None],
    *,
    workload: str,
    metric: str,
) -> list[Measurement]:
    """Each round, each system: ``measure(system)`` (in a thread: it runs servers and
    clients), each value appended to its row (made by ``new_row(system, metric)``). A system
    that fails is reported not run (on ``metric``), with the reason, and left out after."""
    rows: dict[tuple[str, str], Measurement] = {}
    failed: dict[str, str] = {}
    for rnd in range(cfg.rounds):
        for system in systems:
            if system in failed:
                continue
            try:
                stats = await asyncio.to_thread(measure, system)
            except Exception as exc:
                failed[system] = f"failed: {one_line(exc)}"
                log(f"  {system}: {failed[system]}")
                continue
            for name, value in stats.items():
                row = rows.get((system, name))
                if row is None:
                    row = rows[(system, name)] = new_row(system, name)
                row.values.append(value)
            log(
                f"  round {rnd + 1}/{cfg.rounds} {system}: "
                + ", ".join(f"{k} {v:,.1f}" for k, v in stats.items())
            )
    out: list[Measurement] = []
    for system in systems:
        if system in failed:
            out.append(not_run(workload, system, metric, failed[system]))
        else:
            out.extend(m for (s, _), m in rows.items() if s == system)
    return out


def one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


class Countdown:
    """Counts completions from any thread; ``await wait()`` returns when ``target`` is reached."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self._lock = threading.Lock()
        self._thread_done = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_done: asyncio.Event | None = None
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
            self._async_done = asyncio.Event()

    def hit(self, *_: Any) -> None:
        """One completion (thread-safe)."""
        with self._lock:
            self.count += 1
            reached = self.count == self.target
        if reached:
            self._thread_done.set()
            if self._loop is not None and self._async_done is not None:
                try:
                    running = asyncio.get_running_loop()
                except RuntimeError:
                    running = None
                if running is self._loop:
                    self._async_done.set()
                else:
                    self._loop.call_soon_threadsafe(self._async_done.set)

    def hit_in_loop(self) -> None:
        """One completion, from the event loop's own thread (no lock needed)."""
        self.count += 1
        if self.count == self.target and self._async_done is not None:
            self._async_done.set()

    async def wait(self, timeout: float) -> None:
        assert self._async_done is not None
        await asyncio.wait_for(self._async_done.wait(), timeout)

    def wait_blocking(self, timeout: float) -> bool:
        return self._thread_done.wait(timeout)


@dataclass
class Phases:
    """One round of a throughput measurement, in seconds (``None``: the phase does not apply)."""

    enqueue: float | None
    drain: float | None
    e2e: float | None
    server: ServerCost | None = None  # the PostgreSQL server's work over the three phases


def collect(
    rows: dict[str, Measurement],
    key: str,
    make: Callable[[], Measurement],
    value: float | None,
) -> None:
    if value is None:
        return
    row = rows.get(key)
    if row is None:
        row = rows[key] = make()
    row.values.append(value)


# --- PostgreSQL ------------------------------------------------------------------------------


def pg_available() -> str | None:
    """``None`` when the server answers, else why not."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg not installed ({exc}); pip install -e '.[bench]'"
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} unreachable: {one_line(exc)}"
    return None


def pg_version() -> str:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "?"
    except Exception as exc:
        return f"n/a ({one_line(exc)})"


def _recreate(name: str, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


@contextlib.asynccontextmanager
async def fresh_database(name: str) -> AsyncIterator[str]:
    """A new, empty database ``name`` (dropped afterwards); yields its URL. The name gets this
    process's id: two bench runs on one server never recreate (drop) each other's database."""
    name = f"{name}_{os.getpid()}"
    await asyncio.to_thread(_recreate, name)
    try:
        yield PG_BASE + name
    finally:
        await asyncio.to_thread(_recreate, name, True)


def fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def by_key(rows: Iterable[Measurement]) -> dict[tuple[str, str, str], Measurement]:
    return {(m.workload, m.system, m.metric): m for m in rows}
