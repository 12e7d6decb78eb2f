"""Pure scheduling policy: which queued job starts next, and when a failed job runs again.

Backends select candidates and record decisions; the order itself is decided here, so every
backend orders jobs the same way and the rules are unit-tested without a database.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from .models import TOP_PRIORITY

DEFAULT_AGING_SECONDS = 300.0


class Candidate(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def priority(self) -> int: ...
    @property
    def run_at(self) -> float: ...


def effective_priority(priority: int, run_at: float, now: float, aging_seconds: float) -> int:
    """A job's priority for ordering: a job that has waited past ``aging_seconds`` since it became
    ready is treated as a top-priority (VIP) job, so no tier starves."""
    if priority > TOP_PRIORITY and aging_seconds >= 0 and now - run_at >= aging_seconds:
        return TOP_PRIORITY
    return priority


def claim_order_key(job: Candidate, now: float, aging_seconds: float) -> tuple[int, int]:
    """Sort key of claim order: effective priority, then enqueue order (the id)."""
    return (effective_priority(job.priority, job.run_at, now, aging_seconds), job.id)


C = TypeVar("C", bound=Candidate)


def choose_claims(candidates: Iterable[C], limit: int, now: float, aging_seconds: float) -> list[C]:
    """The ``limit`` ready candidates that start next, in start order (duplicates ignored)."""
    unique = {c.id: c for c in candidates if c.run_at <= now}
    ordered = sorted(unique.values(), key=lambda c: claim_order_key(c, now, aging_seconds))
    return ordered[:limit]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits up to ``base * factor**(n-1)``,
    capped at ``max_delay``, and at least ``min_delay``."""

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    min_delay: float = 0.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
        ceiling = min(self.max_delay, self.base * self.factor ** max(0, attempt - 1))
        draw = (rng or _rng).uniform(0.0, ceiling)
        return max(self.min_delay, draw)


_rng = random.Random()


def next_run_after_failure(
    attempts: int,
    max_attempts: int,
    now: float,
    retry: RetryPolicy,
    rng: random.Random | None = None,
) -> float | None:
    """When a job that just failed its ``attempts``-th attempt runs again, or ``None``: give up."""
    if attempts >= max_attempts:
        return None
    return now + retry.delay(attempts, rng)
