"""Per-customer request rate limits: one token bucket per customer, in this process's memory.

``RATE_LIMIT_PER_CUSTOMER`` is the refill rate in requests per second; a bucket holds twice that
(at least one request), so a customer may burst briefly and then runs at the rate. VIP customers
get :data:`VIP_FACTOR` times the rate and burst: they pay for priority, and a VIP's intake must
not be throttled before a regular customer's (VIP orders go first). The buckets of one process
live here; a group of web processes shares them (:class:`~order_service.shared.SharedRateLimiter`).

Memory is bounded: a bucket that has refilled completely is the same as no bucket, so idle ones
are dropped, and at most ``max_buckets`` are kept (least recently used go first).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

VIP_FACTOR = 2.0
DEFAULT_MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a request may go ahead, and if not, after how many seconds to try again."""

    allowed: bool
    retry_after: int = 0


def spend(tokens: float, rate: float) -> tuple[float, Decision]:
    """One token out of a bucket holding ``tokens`` that refills at ``rate``: what is left and
    the decision."""
    if tokens >= 1.0:
        return tokens - 1.0, Decision(True)
    return tokens, Decision(False, retry_after=max(1, math.ceil((1.0 - tokens) / rate)))


class RateLimiter:
    """Token buckets keyed by customer; ``rate`` 0 switches limiting off."""

    def __init__(
        self,
        rate: float,
        *,
        vip_factor: float = VIP_FACTOR,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate < 0 or vip_factor <= 0 or max_buckets < 1:
            raise ValueError("rate >= 0, vip_factor > 0 and max_buckets >= 1 are required")
        self.rate = rate
        self.vip_factor = vip_factor
        self.max_buckets = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def limits(self, vip: bool) -> tuple[float, float]:
        """``(rate, burst)`` for a customer of this tier."""
        rate = self.rate * (self.vip_factor if vip else 1.0)
        return rate, max(1.0, 2.0 * rate)

    def take(self, key: str, *, vip: bool = False) -> Decision:
        """Spend one token of ``key``'s bucket, or say how long until one is there."""
        if not self.enabled:
            return Decision(True)
        rate, burst = self.limits(vip)
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(tokens=burst, updated=now)
        else:
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
        self._buckets[key] = bucket  # most recently used last
        self._evict(now)
        bucket.tokens, decision = spend(bucket.tokens, rate)
        return decision

    def _evict(self, now: float) -> None:
        # A bucket idle for ``burst / rate`` seconds is full again: forgetting it changes nothing.
        # The slowest refill (regular tier) bounds that time for every bucket.
        rate, burst = self.limits(vip=False)
        idle = burst / rate
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if len(self._buckets) <= self.max_buckets and now - oldest.updated < idle:
                break
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
