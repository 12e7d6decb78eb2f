"""What a stretch of work costs the PostgreSQL server: backend CPU, WAL bytes and commits.

The server runs on this machine, so a backend's CPU time is read from ``/proc/<pid>/stat``.
:func:`server_cost` watches every backend connected to one database (whoever opened it: this
process, a pool, a child process) and adds up what each used while the block ran; the WAL is
the distance ``pg_current_wal_lsn()`` moved (the whole cluster's: anything else writing to the
server at the time is counted too), the commits are the database's ``xact_commit``.

A backend reports its commits to the statistics at most once a second while busy, and an idle
one may hold the last second's for ten more: the block should close the system's connections
before it ends (a backend's exit reports everything), as W1's PostgreSQL rows do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from . import common

#: How often the backends of the database are listed and their CPU read.
SAMPLE_EVERY = 0.1
#: How long a closed connection's backend is given to exit and report its counters.
STATS_SETTLE = 1.2


def backend_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (a PostgreSQL backend)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ServerCost:
    """The server's work over one measured stretch, in total (divide by the jobs)."""

    cpu_seconds: float
    wal_bytes: int
    commits: int

    def per_job(self, jobs: int) -> dict[str, float]:
        """The cost of one job: CPU µs, WAL bytes and commits."""
        return {
            "server CPU us/job": 1e6 * self.cpu_seconds / jobs,
            "WAL bytes/job": self.wal_bytes / jobs,
            "commits/job": self.commits / jobs,
        }


class _Backends:
    """The CPU each backend of one database used since it was first seen (a backend that
    connects later counts from its start: its connection set-up is part of the cost)."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def sample(self, pids: list[int], initial: bool = False) -> None:
        for pid in pids:
            try:
                cpu = backend_cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue  # gone since it was listed; its last sample stands
            self.first.setdefault(pid, cpu if initial else 0.0)
            self.last[pid] = cpu

    @property
    def used(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def _snapshot(conn: Any, database: str) -> tuple[list[int], str, int]:
    pids = [
        int(row[0])
        for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    ]
    lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    commits = conn.execute(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
    ).fetchone()
    return pids, str(lsn), int(commits[0]) if commits else 0


def _wal_between(conn: Any, lsn0: str, lsn1: str) -> int:
    row = conn.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (lsn1, lsn0)).fetchone()
    return int(row[0])


@dataclass
class CostProbe:
    """Filled in when :func:`server_cost`'s block ends."""

    result: ServerCost | None = None


@contextlib.asynccontextmanager
async def server_cost(database: str) -> AsyncIterator[CostProbe]:
    """Measure what the server does for ``database`` while the block runs; the result is on the
    yielded probe afterwards. The watcher connects to the benchmark's admin database (its own
    queries are not counted) and lists the database's backends every :data:`SAMPLE_EVERY` s."""
    import psycopg

    probe = CostProbe()
    conn = await asyncio.to_thread(lambda: psycopg.connect(common.PG_ADMIN_URL, autocommit=True))
    try:
        pids, lsn0, commits0 = await asyncio.to_thread(_snapshot, conn, database)
        backends = _Backends()
        backends.sample(pids, initial=True)
        stop = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)
                listed, _, _ = await asyncio.to_thread(_snapshot, conn, database)
                backends.sample(listed)

        watcher = asyncio.create_task(watch())
        try:
            yield probe
        finally:
            stop.set()
            await watcher
        listed, lsn1, _ = await asyncio.to_thread(_snapshot, conn, database)
        backends.sample(listed)
        await asyncio.sleep(STATS_SETTLE)  # the backends' exits report their last commits
        _, _, commits1 = await asyncio.to_thread(_snapshot, conn, database)
        wal = await asyncio.to_thread(_wal_between, conn, lsn0, lsn1)
        probe.result = ServerCost(backends.used, wal, max(0, commits1 - commits0))
    finally:
        await asyncio.to_thread(conn.close)
