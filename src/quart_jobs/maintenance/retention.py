"""Retention: finished jobs older than a set age are deleted by the running process.

Jobs are queue rows, not records: once a job succeeded, failed or was cancelled, its row is
kept for inspection (and retries) for the retention period, then deleted, in batches of
1,000 rows per transaction so that enqueues keep flowing. Queued and running jobs are never
deleted. Every process that runs workers (and every Quart app serving) checks at least once
a minute; purges from several processes at once are harmless.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

from ..errors import ConfigurationError
from ..models import JobState

log = logging.getLogger("quart_jobs")

#: Duration units, in seconds.
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: The longest wait between two checks.
MAX_CHECK_INTERVAL = 60.0


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``15m``, ``12h``, ``7d``, ``2w`` (or a plain number of seconds)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: use a number and s, m, h, d or w (7d)")
    return float(match.group(1)) * DURATION_UNITS.get(match.group(2) or "s", 1)


def parse_retention(value: str | float | None) -> float | None:
    """A retention setting: a duration (``7d``, ``3600``), or ``0``/``off``/``none`` for
    "keep finished jobs forever" (``None``); :class:`ConfigurationError` otherwise."""
    if value is None:
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif value.strip().lower() in ("off", "none", "never", ""):
        return None
    else:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ConfigurationError(f"retention: {exc}, or off") from None
    if not seconds >= 0:
        raise ConfigurationError(f"retention: {value!r} is negative; use a duration or off")
    return seconds or None


def check_interval(retention: float) -> float:
    """How often to look for expired jobs: half the retention, between 1 s and a minute."""
    return min(MAX_CHECK_INTERVAL, max(1.0, retention / 2))


class Retention:
    """The loop that deletes finished jobs older than ``seconds`` (see the module)."""

    def __init__(
        self,
        purge: Callable[[float], Awaitable[dict[JobState, int]]],
        seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._purge = purge  # deletes the finished jobs older than its argument (jobs.purge)
        self.seconds = seconds
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def purge_once(self) -> dict[JobState, int]:
        """Delete the finished jobs that are past retention now; return how many per state."""
        removed = await self._purge(self.clock() - self.seconds)
        total = sum(removed.values())
        if total:
            log.info("retention: deleted %d finished jobs older than %gs", total, self.seconds)
        return removed

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._loop(), name="quart-jobs-retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _loop(self) -> None:
        interval = check_interval(self.seconds)
        while True:
            try:
                await self.purge_once()
            except Exception as exc:  # the store is down: try again at the next check
                log.warning("retention: purge of finished jobs failed: %s", exc)
            await asyncio.sleep(interval)
