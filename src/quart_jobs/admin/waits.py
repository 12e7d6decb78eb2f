"""``GET /admin/api/waits``: how long jobs waited to start, per tier, minute by minute, and the
owners (customers) who waited longest: the dashboard's wait charts and its per-customer table.

A job's wait is ``started_at - max(enqueued_at, run_at)`` (its latest attempt). The store counts
the jobs started in the window by minute, tier and wait bucket (:data:`WAIT_BOUNDS`, a 1-2-5
scale) through the index of finished jobs and the lease index, so every process's jobs are in
it and the cost grows with the window's jobs only. A percentile is the upper bound of the
bucket that holds it (nearest rank): "p99 ≤ 5 s" reads "99 % of the jobs waited at most 5 s".
A wait over a day is reported as a day.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, Response, jsonify, request
from quart_schema import document_querystring, document_response

from ..backends.operator import WAIT_BOUNDS, StartedWaits
from ..jobs import Jobs
from ..models import Tier
from .api import BUCKET_SECONDS, parse_query
from .auth import AdminAuth
from .schemas import SHOWN_TIERS, admin_operation

QUANTILES = {"p50": 0.5, "p99": 0.99}


class WaitsQuery(BaseModel):
    minutes: int = Field(default=60, ge=1, le=180, description="the window, in whole minutes")
    owners: int = Field(default=5, ge=1, le=50, description="owners listed per tier")


class WaitBucket(BaseModel):
    start: float = Field(description="the minute's start; the last minute is still filling")
    jobs: int = Field(description="jobs of the tier that started in that minute")
    p50: float | None = Field(description="seconds; null when no job started")
    p99: float | None = Field(description="seconds; null when no job started")


class OwnerWaitAnswer(BaseModel):
    owner: str
    longest_wait: float = Field(
        description="the longest wait of the owner's jobs, seconds: of those started in the "
        "window, and of those ready and still queued (their wait so far)"
    )
    jobs: int = Field(description="the owner's jobs of this tier started in the window")
    waiting: int = Field(
        description="the owner's ready jobs of this tier still queued (among the 1,000 queued "
        "longest)"
    )


class TierWaits(BaseModel):
    tier: str
    priority: int
    jobs: int = Field(description="jobs of the tier started in the window")
    p50: float | None = Field(description="over the whole window, seconds")
    p99: float | None = Field(description="over the whole window, seconds")
    buckets: list[WaitBucket]
    longest_waiting_owners: list[OwnerWaitAnswer] = Field(
        description="the owners whose jobs waited longest, longest first"
    )


class WaitsAnswer(BaseModel):
    now: float
    bucket_seconds: int
    bounds: list[float] = Field(description="the wait buckets' upper bounds, seconds")
    tiers: list[TierWaits]


def percentile(slots: dict[int, int], q: float) -> float | None:
    """The upper bound of the wait bucket holding quantile ``q`` (nearest rank) of the jobs
    counted per slot; ``None`` for no job."""
    total = sum(slots.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for slot in sorted(slots):
        seen += slots[slot]
        if seen >= rank:
            return WAIT_BOUNDS[min(slot, len(WAIT_BOUNDS) - 1)]
    raise AssertionError("unreachable: the ranks add up to the total")


def _summary(slots: dict[int, int]) -> dict[str, Any]:
    return {"jobs": sum(slots.values()), **{k: percentile(slots, q) for k, q in QUANTILES.items()}}


def waits_answer(waits: StartedWaits, since: float, minutes: int) -> dict[str, Any]:
    """The :class:`WaitsAnswer` body (without ``now``) for ``minutes`` buckets from ``since``."""
    priorities = sorted({p for _, p, _ in waits.counts} | set(SHOWN_TIERS))
    per_bucket: dict[tuple[int, int], dict[int, int]] = {}
    whole: dict[int, dict[int, int]] = {p: {} for p in priorities}
    for (bucket, priority, slot), n in waits.counts.items():
        if not 0 <= bucket < minutes:
            continue
        cell = per_bucket.setdefault((priority, bucket), {})
        cell[slot] = cell.get(slot, 0) + n
        whole[priority][slot] = whole[priority].get(slot, 0) + n
    tiers = []
    for priority in priorities:
        buckets = [
            {"start": since + i * BUCKET_SECONDS, **_summary(per_bucket.get((priority, i), {}))}
            for i in range(minutes)
        ]
        owners = [
            {
                "owner": o.owner,
                "longest_wait": max(0.0, o.longest),
                "jobs": o.jobs,
                "waiting": o.waiting,
            }
            for o in waits.owners
            if o.priority == priority
        ]
        tiers.append(
            {
                "tier": Tier.name_of(priority),
                "priority": priority,
                **_summary(whole[priority]),
                "buckets": buckets,
                "longest_waiting_owners": owners,
            }
        )
    return {"bucket_seconds": BUCKET_SECONDS, "bounds": list(WAIT_BOUNDS), "tiers": tiers}


def add_wait_routes(bp: Blueprint, jobs: Jobs, auth: AdminAuth) -> None:
    @bp.get("/api/waits")
    @document_querystring(WaitsQuery)
    @document_response(WaitsAnswer, 200)
    @admin_operation(400)
    async def admin_waits() -> Response:
        """How long jobs waited to start, per tier and minute (p50, p99) over the last
        ``minutes``, and the owners whose jobs waited longest in each tier (started in the
        window, or still waiting now). Every process's
        jobs count: the numbers come from the store."""
        await auth.authenticate(request)
        query = parse_query(WaitsQuery)
        now = jobs.clock()
        # Whole minutes, the last one still filling, as the throughput chart's.
        first = (math.floor(now / BUCKET_SECONDS) - query.minutes + 1) * BUCKET_SECONDS
        waits = await jobs.operator.started_waits(first, BUCKET_SECONDS, query.owners, now)
        return jsonify({"now": now, **waits_answer(waits, first, query.minutes)})
