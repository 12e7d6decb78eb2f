"""``GET /readyz``: does the database accept a write, and (with embedded workers) does the
worker run?

The database check is a real write: a page-sized row rewritten and committed through the
same writer the orders use, so a full disk, a read-only file or a lost server shows as
``unavailable``. Its result is kept for ``ttl`` seconds and concurrent checks share one probe,
so however often a load balancer polls, the writer sees at most one probe per ``ttl``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from quart_jobs import QuartJobs

#: Seconds a probe's answer is reused.
PROBE_TTL = 1.0


class Readiness:
    def __init__(
        self,
        jobs: QuartJobs,
        *,
        embedded_workers: bool,
        ttl: float = PROBE_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jobs = jobs
        self.embedded_workers = embedded_workers
        self.ttl = ttl
        self._monotonic = monotonic
        self._database: tuple[float, str] | None = None
        self._probing: asyncio.Task[str] | None = None

    async def checks(self) -> dict[str, str]:
        """``{"database": ..., "worker": ...}``, each ``"ok"`` or what is wrong."""
        checks = {"database": await self._database_check()}
        if self.embedded_workers:
            worker = self.jobs.embedded
            checks["worker"] = "ok" if worker is not None and worker.running else "not running"
        return checks

    async def _database_check(self) -> str:
        cached = self._database
        if cached is not None and self._monotonic() - cached[0] < self.ttl:
            return cached[1]
        if self._probing is None or self._probing.done():
            self._probing = asyncio.get_running_loop().create_task(self._probe())
        return await asyncio.shield(self._probing)

    async def _probe(self) -> str:
        try:
            await self.jobs.operator.probe_write(self.jobs.clock())
            answer = "ok"
        except Exception as exc:
            answer = f"unavailable: {' '.join(str(exc).split()) or type(exc).__name__}"
        self._database = (self._monotonic(), answer)
        return answer
