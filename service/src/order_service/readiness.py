"""``GET /readyz``: does the database accept a write, and (with embedded workers) does the
worker run?

The database check is a real write: a page-sized row rewritten and committed through the
same writer the orders use, so a full disk, a read-only file or a lost server shows as
``unavailable``. Its result is kept for ``ttl`` seconds and concurrent checks share one probe,
so however often a load balancer polls, the writer sees at most one probe per ``ttl``.

The probe alone can pass on a disk that no longer takes orders: its row is rewritten in
place, and SQLite's write-ahead log reuses the space it already has, where a new order needs
more. So the request path reports its own writes too (:meth:`Readiness.write_failed`,
:meth:`Readiness.write_succeeded`): from a store failure of a real request on, the database
check answers ``unavailable`` with that failure, whatever the probe says, until a real write
succeeds again or ``hold`` seconds have passed without one (then the probe decides again, and
the next failed request makes it ``unavailable`` again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from quart_jobs import QuartJobs

#: Seconds a probe's answer is reused.
PROBE_TTL = 1.0
#: Seconds a real request's failed write keeps the database check ``unavailable`` when no
#: real write succeeds meanwhile.
FAILURE_HOLD = 10.0


class Readiness:
    def __init__(
        self,
        jobs: QuartJobs,
        *,
        embedded_workers: bool,
        ttl: float = PROBE_TTL,
        hold: float = FAILURE_HOLD,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jobs = jobs
        self.embedded_workers = embedded_workers
        self.ttl = ttl
        self.hold = hold
        self._monotonic = monotonic
        self._database: tuple[float, str] | None = None
        self._probing: asyncio.Task[str] | None = None
        self._failed: tuple[float, str] | None = None

    def write_failed(self, exc: BaseException) -> None:
        """A real request could not write (or reach) the store: not ready from now on."""
        self._failed = (self._monotonic(), _unavailable(exc))
        self._database = None  # a probe's earlier "ok" no longer holds

    def write_succeeded(self) -> None:
        """A real request's write committed: the store takes writes again."""
        self._failed = None

    async def checks(self) -> dict[str, str]:
        """``{"database": ..., "worker": ...}``, each ``"ok"`` or what is wrong."""
        checks = {"database": await self._database_check()}
        if self.embedded_workers:
            worker = self.jobs.embedded
            checks["worker"] = "ok" if worker is not None and worker.running else "not running"
        return checks

    async def _database_check(self) -> str:
        failed = self._failed
        if failed is not None and self._monotonic() - failed[0] < self.hold:
            return failed[1]
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
            answer = _unavailable(exc)
        self._database = (self._monotonic(), answer)
        return answer


def _unavailable(exc: BaseException) -> str:
    return f"unavailable: {' '.join(str(exc).split()) or type(exc).__name__}"
