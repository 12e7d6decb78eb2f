"""The per-customer token bucket: rate, burst, the VIP allowance, bounded memory."""

from __future__ import annotations

import pytest
from tests.conftest import Clock

from order_service.ratelimit import RateLimiter


def test_burst_is_twice_the_rate_then_the_rate_holds(clock: Clock) -> None:
    limiter = RateLimiter(2.0, clock=clock)
    assert [limiter.take("a").allowed for _ in range(5)] == [True] * 4 + [False]
    clock.advance(0.5)
    assert limiter.take("a").allowed
    assert not limiter.take("a").allowed


def test_retry_after_is_the_wait_for_one_token_rounded_up(clock: Clock) -> None:
    limiter = RateLimiter(0.1, clock=clock)  # burst 1 (at least one request)
    assert limiter.take("a").allowed
    decision = limiter.take("a")
    assert (decision.allowed, decision.retry_after) == (False, 10)


def test_vip_gets_the_larger_allowance(clock: Clock) -> None:
    limiter = RateLimiter(1.0, clock=clock)
    assert sum(limiter.take("v", vip=True).allowed for _ in range(10)) == 4
    assert sum(limiter.take("r").allowed for _ in range(10)) == 2


def test_zero_rate_switches_limiting_off(clock: Clock) -> None:
    limiter = RateLimiter(0.0, clock=clock)
    assert all(limiter.take("a").allowed for _ in range(1000))
    assert len(limiter) == 0


def test_memory_is_bounded_idle_buckets_go_and_the_cap_holds(clock: Clock) -> None:
    limiter = RateLimiter(1.0, max_buckets=100, clock=clock)
    for i in range(1000):
        limiter.take(f"c{i}")
    assert len(limiter) == 100
    clock.advance(3)  # every bucket is full again: forgetting them changes nothing
    limiter.take("new")
    assert len(limiter) == 1


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(-1.0)
