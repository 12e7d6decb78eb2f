"""Pure scheduling policy: claim order with aging, and retry timing, on an injected clock."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from quart_jobs.models import Tier
from quart_jobs.policy import (
    RetryPolicy,
    choose_claims,
    effective_priority,
    next_run_after_failure,
)

VIP, REGULAR = int(Tier.VIP), int(Tier.REGULAR)
NOW = 10_000.0


@dataclass(frozen=True)
class C:
    id: int
    priority: int
    run_at: float


def order(cands: list[C], limit: int = 100, aging: float = 300) -> list[int]:
    return [c.id for c in choose_claims(cands, limit, NOW, aging)]


def test_vip_before_regular_then_enqueue_order() -> None:
    cands = [C(1, REGULAR, NOW), C(2, VIP, NOW), C(3, REGULAR, NOW), C(4, VIP, NOW)]
    assert order(cands) == [2, 4, 1, 3]


def test_limit_takes_the_first_in_claim_order() -> None:
    cands = [C(i, REGULAR if i % 2 else VIP, NOW) for i in range(1, 9)]
    assert order(cands, limit=3) == [2, 4, 6]


def test_jobs_not_yet_ready_are_not_chosen() -> None:
    assert order([C(1, VIP, NOW + 1), C(2, REGULAR, NOW)]) == [2]


def test_aging_promotes_a_regular_job_that_waited_past_the_limit() -> None:
    assert effective_priority(REGULAR, NOW - 300, NOW, 300) == VIP
    assert effective_priority(REGULAR, NOW - 299.9, NOW, 300) == REGULAR
    # An aged job joins the VIP tier in enqueue order: before later VIP jobs.
    cands = [C(5, VIP, NOW), C(1, REGULAR, NOW - 400), C(6, REGULAR, NOW)]
    assert order(cands) == [1, 5, 6]


def test_aging_can_be_turned_off_and_never_demotes() -> None:
    assert effective_priority(REGULAR, 0, NOW, -1) == REGULAR
    assert effective_priority(VIP, 0, NOW, 300) == VIP


def test_duplicates_from_two_candidate_queries_count_once() -> None:
    cands = [C(1, REGULAR, NOW - 400), C(1, REGULAR, NOW - 400), C(2, VIP, NOW)]
    assert order(cands) == [1, 2]


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base=1, factor=2, max_delay=10)
    rng = random.Random(7)
    for attempt, ceiling in ((1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)):
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # the jitter spreads over the whole range


def test_no_retry_once_out_of_attempts() -> None:
    policy = RetryPolicy(base=1)
    assert next_run_after_failure(3, 3, NOW, policy) is None
    run_at = next_run_after_failure(1, 3, NOW, policy, random.Random(1))
    assert run_at is not None and NOW <= run_at <= NOW + 1


@pytest.mark.parametrize(("value", "expected"), [("vip", 0), ("REGULAR", 10), ("5", 5), (3, 3)])
def test_tier_parse(value: str | int, expected: int) -> None:
    assert Tier.parse(value) == expected


def test_tier_parse_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown tier 'gold'"):
        Tier.parse("gold")
