"""Rate limits, pure: parsing ``"N/PERIOD"``, a key's log of starts, and the budgets a claim
may spend (the backends store the log; the decisions are made here, the same for all).

Guarantee: for each key, in every interval of the period's length on the store's clock, at
most N jobs with that key have their ``started_at`` in it. A new start at ``t`` keeps that iff
fewer than N starts lie in ``(t - period, t]``; the check here counts ``(t - period - margin,
t]`` so that times a task reads from its own clock (a few ms after ``started_at``) hold too.

A key's log keeps one entry ``(at, count)`` per claim that started jobs of the key (a claim
starts its jobs at one time), pruned past the period and capped at :data:`MAX_ENTRIES` by
merging the two closest entries into the later one: past starts then look later, so a window
opens later, never earlier (no over-admission).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

#: Entries a key's log keeps at most (merging beyond).
MAX_ENTRIES = 256
#: N of ``N/PERIOD`` is at most this; the period at most a day.
MAX_N = 100_000
MAX_PERIOD = 86_400.0
#: What a malformed limit's message shows.
FORMAT = 'write N/PERIOD, e.g. "10/s", "100/m", "5/h" or "20/5s"'

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"\s*(\d+)\s*/\s*(?:(s|m|h)|(\d+(?:\.\d+)?)\s*s)\s*")


def margin(period: float) -> float:
    """The slack a window is counted with: 1 % of the period, at most 20 ms."""
    return min(0.01 * period, 0.02)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``n`` starts in any interval of ``period`` seconds (see :meth:`parse`)."""

    n: int
    period: float

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or not 1 <= self.n <= MAX_N:
            raise ValueError(f"a rate limit's N must be an integer from 1 to {MAX_N}: {FORMAT}")
        if not 0 < self.period <= MAX_PERIOD or math.isnan(self.period):
            raise ValueError(f"a rate limit's period must be > 0 s and at most a day: {FORMAT}")

    @classmethod
    def parse(cls, text: RateLimit | str, *, what: str = "rate_limit") -> RateLimit:
        """``"10/s"``, ``"100/m"``, ``"5/h"``, ``"20/5s"`` (N per 5 seconds), ``"3/0.5s"``."""
        if isinstance(text, RateLimit):
            return text
        match = _PATTERN.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{what} {text!r}: {FORMAT}")
        n, unit, seconds = match.groups()
        period = _UNITS[unit] if unit else float(seconds)
        try:
            return cls(int(n), period)
        except ValueError as error:
            raise ValueError(f"{what} {text!r}: {error}") from None

    def __str__(self) -> str:
        for unit, seconds in _UNITS.items():
            if self.period == seconds:
                return f"{self.n}/{unit}"
        return f"{self.n}/{self.period:g}s"


@dataclass(slots=True)
class StartLog:
    """A key's starts: ``(at, count)`` entries in ascending ``at`` (see module doc)."""

    entries: list[tuple[float, int]] = field(default_factory=list)

    @classmethod
    def loads(cls, text: str | None) -> StartLog:
        return cls([(float(a), int(c)) for a, c in json.loads(text or "[]")])

    def dumps(self) -> str:
        return json.dumps([[a, c] for a, c in self.entries], separators=(",", ":"))

    @property
    def last(self) -> float | None:
        """The latest start logged (a floor for the next: the log never goes back)."""
        return self.entries[-1][0] if self.entries else None

    def count_after(self, since: float) -> int:
        """Starts logged strictly after ``since`` (later than now too, after a clock step)."""
        total = 0
        for at, count in reversed(self.entries):
            if at <= since:
                break
            total += count
        return total

    def budget(self, limit: RateLimit, now: float) -> int:
        """Starts that may happen at ``now`` keeping every window within ``limit``."""
        since = now - _span(limit.period)
        return max(0, limit.n - self.count_after(since))

    def open_at(self, limit: RateLimit, now: float) -> float:
        """The earliest time ``>= now`` with a budget, if no start happens meanwhile."""
        seen = 0
        for at, count in reversed(self.entries):
            seen += count
            if seen >= limit.n:  # this entry holds the n-th latest start: it must leave
                return max(now, _after(at, _span(limit.period)))
        return now

    def charge(self, at: float, count: int) -> None:
        """Log ``count`` starts at ``at`` (not before :attr:`last`: callers floor it)."""
        if count <= 0:
            return
        if self.entries and self.entries[-1][0] >= at:
            last_at, last_count = self.entries[-1]
            self.entries[-1] = (last_at, last_count + count)
        else:
            self.entries.append((at, count))
        while len(self.entries) > MAX_ENTRIES:
            self._merge_closest()

    def prune(self, now: float, period: float) -> None:
        """Forget entries no window of ``period`` seconds ending at ``now`` or later counts."""
        since = now - _span(period)
        keep = 0
        while keep < len(self.entries) and self.entries[keep][0] <= since:
            keep += 1
        del self.entries[:keep]

    def _merge_closest(self) -> None:
        gaps = [self.entries[i + 1][0] - self.entries[i][0] for i in range(len(self.entries) - 1)]
        i = gaps.index(min(gaps))
        (_, first), (later, second) = self.entries[i], self.entries[i + 1]
        self.entries[i : i + 2] = [(later, first + second)]


def _span(period: float) -> float:
    """How far back from a start its window is counted: the period and the margin."""
    return period + margin(period)


def _after(at: float, span: float) -> float:
    """The first time ``t`` at which ``t - span > at`` holds in floating point."""
    t = at + span
    while t - span <= at:
        t = math.nextafter(t, math.inf)
    return t


@dataclass(slots=True)
class KeyState:
    """A key's stored row: its log, when it next has room, the longest period seen."""

    log: StartLog = field(default_factory=StartLog)
    open_at: float = 0.0
    period: float = 0.0


class Rated(Protocol):
    """A candidate job with (maybe) a rate key."""

    @property
    def rate_key(self) -> str | None: ...
    @property
    def rate_limit(self) -> int | None: ...
    @property
    def rate_period(self) -> float | None: ...


def limits_of(candidates: Iterable[Rated]) -> dict[str, set[RateLimit]]:
    """The limits the candidates name, per key (jobs of one key may name different ones)."""
    limits: dict[str, set[RateLimit]] = {}
    for c in candidates:
        if c.rate_key is not None and c.rate_limit is not None and c.rate_period is not None:
            limits.setdefault(c.rate_key, set()).add(RateLimit(int(c.rate_limit), c.rate_period))
    return limits


def budgets(
    limits: Mapping[str, Iterable[RateLimit]], states: Mapping[str, KeyState], now: float
) -> dict[str, int]:
    """Starts each key may have at ``now``: the strictest of its limits decides."""
    return {
        key: min(states.get(key, KeyState()).log.budget(limit, now) for limit in key_limits)
        for key, key_limits in limits.items()
    }


def floor(states: Mapping[str, KeyState], now: float) -> float:
    """``now``, or the latest start logged for these keys if later (a clock stepped back):
    a key's starts never go back in time, so its windows stay counted right."""
    return max([now, *(s.log.last for s in states.values() if s.log.last is not None)])


def settle(
    limits: Mapping[str, Iterable[RateLimit]],
    states: Mapping[str, KeyState],
    started: Mapping[str, int],
    at: float,
) -> dict[str, KeyState]:
    """The keys' rows after ``started[key]`` starts at ``at``: the ones that changed (a log
    charged, or an opening time moved)."""
    changed: dict[str, KeyState] = {}
    for key, key_limits in limits.items():
        old = states.get(key, KeyState())
        key_limits = list(key_limits)
        period = max(old.period, *(limit.period for limit in key_limits))
        log = StartLog(list(old.log.entries))
        log.charge(at, started.get(key, 0))
        log.prune(at, period)
        open_at = max(log.open_at(limit, at) for limit in key_limits)
        if key in started or open_at != old.open_at or period != old.period:
            changed[key] = KeyState(log, open_at, period)
    return changed


def started(chosen: Iterable[Rated]) -> dict[str, int]:
    """How many of ``chosen`` each rate key has."""
    counts: dict[str, int] = {}
    for c in chosen:
        if c.rate_key is not None:
            counts[c.rate_key] = counts.get(c.rate_key, 0) + 1
    return counts
