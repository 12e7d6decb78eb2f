"""The time a backend works in, from the times its callers pass.

Callers pass ``now`` (seconds since the epoch, from ``Jobs(clock=...)`` or the worker's clock)
into every backend method. A backend keeps one :class:`StoreClock` and turns each such time
into its own timeline:

* ``offset``: added to every time a caller passes (``now``, ``run_at``, expiries). PostgreSQL
  sets it to the server's clock minus this process's (measured by its connections), so every
  process on every machine works on one clock, the server's. It is 0 elsewhere.
* a high-water mark: ``now`` never goes below the largest ``now`` already used, so a backward
  step of the wall clock cannot make queued jobs wait nor leases look younger. SQLite starts the
  mark from the database at open (its ``statements.HIGH_WATER``), so a restart after the step
  is covered too.

A job's own ``run_at`` is not lifted by the high-water mark: a delay asked for after a backward
step comes due on the corrected clock (early rather than late), and a job queued before the
step comes due at most ``step`` seconds after its ``run_at``. See docs/guarantees.md, "Time".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

#: Offsets smaller than this are measurement noise (RTT/2 on a LAN is well below it): ignored.
DEAD_BAND = 1.0
#: How often (seconds) a PostgreSQL backend measures the server's clock again.
REFRESH_SECONDS = 30.0


class StoreClock:
    """Callers' times to the store's: ``now(t)`` for the present, ``at(t)`` for any other
    time a caller computed (``run_at``, expiries), ``local(t)`` for a stored time read back
    to be compared with the caller's clock (say ``next_run_at``)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.high = -math.inf
        self.lift = 0.0  # how far the high-water mark raised the last ``now``

    def floor(self, value: Any) -> None:
        """Never go below ``value`` (a time read from the store; ``None`` is ignored)."""
        if value is not None:
            self.high = max(self.high, float(value))

    def measured(self, offset: float) -> None:
        """A new offset to the server's clock: it replaces the high-water mark too (a forward
        jump of our clock, used before this measurement, must not hold the store ahead)."""
        self.offset, self.high, self.lift = offset, -math.inf, 0.0

    def now(self, now: float) -> float:
        t = now + self.offset
        if t >= self.high:
            self.high, self.lift = t, 0.0
            return t
        self.lift = self.high - t
        return self.high

    def at(self, t: float) -> float:
        return t + self.offset

    def local(self, t: Any) -> float | None:
        return None if t is None else float(t) - self.offset - self.lift


def offset_from(server: float, sent: float, received: float, dead_band: float = DEAD_BAND) -> float:
    """The server's clock minus ours, from a reading ``server`` taken between our ``sent`` and
    ``received`` (the midpoint: error at most half the round trip); 0 within ``dead_band``."""
    offset = server - (sent + received) / 2
    return offset if abs(offset) >= dead_band else 0.0


class OffsetRefresh:
    """When to measure again: at most every :data:`REFRESH_SECONDS` of ``monotonic`` time."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._last = -math.inf

    def due(self) -> bool:
        if self._monotonic() - self._last < REFRESH_SECONDS:
            return False
        self._last = self._monotonic()
        return True
