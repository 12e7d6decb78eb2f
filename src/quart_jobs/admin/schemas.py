"""The admin JSON API's shapes, for the OpenAPI document, and the functions that build them.

Times are seconds since the epoch (floats, UTC) so that scripts can do arithmetic on them;
every answer carries the server's ``now`` so that ages need no clock of the client's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field
from quart_schema import document_response, security_scheme, tag

from ..models import MAX_JOB_ID, JobState, Stats, Tier
from ..pausing import paused_summary
from ..unserved import unserved_summary, worker_summary

STATES = [s.value for s in JobState]


class AdminErrorDetail(BaseModel):
    code: str
    message: str


class AdminErrorBody(BaseModel):
    error: AdminErrorDetail


class ThrottledHeaders(BaseModel):
    retry_after: str = Field(description="seconds until this client may try a token again")


SECURITY: list[dict[str, list[str]]] = [{"adminToken": []}]
#: What every admin API route can answer before its own work: 401 (no or a wrong token),
#: 404 (the admin is disabled: no token configured), 429 (this client sent too many wrong
#: tokens; ``Retry-After``).
AUTH_ERRORS = (401, 404, 429)

F = TypeVar("F", bound=Callable[..., Any])


def admin_operation(*errors: int) -> Callable[[F], F]:
    """Document an admin API route for OpenAPI: the ``admin`` tag, the bearer token, and every
    error it can answer (:data:`AUTH_ERRORS` and ``errors``) with the JSON error body."""

    def decorate(func: F) -> F:
        for status in sorted({*AUTH_ERRORS, *errors}):
            headers = ThrottledHeaders if status == 429 else None
            func = document_response(AdminErrorBody, status, headers)(func)
        return security_scheme(SECURITY)(tag(["admin"])(func))

    return decorate


class JobSummary(BaseModel):
    """A job as listed: everything but its arguments, result and traceback."""

    id: int
    task: str
    tier: str
    priority: int
    state: str = Field(description="queued, running, succeeded, failed or cancelled")
    attempts: int
    max_attempts: int
    owner: str | None
    enqueued_at: float
    run_at: float
    started_at: float | None
    finished_at: float | None
    worker: str | None
    cancel_requested: bool
    error: str | None
    why: str | None = Field(
        description="why the latest attempt ended as it did: backoff, retry_requested, "
        "gave_up, not_retryable, failed_by_task, lease_expired or cancelled"
    )
    progress: float | None = Field(
        description="how far the latest attempt got (0 to 1) as its task reported, or null"
    )
    progress_message: str | None


class JobDetail(JobSummary):
    """A whole job: its arguments, result and the traceback of its last failure."""

    args: list[Any]
    kwargs: dict[str, Any]
    key: str | None
    timeout: float | None
    lease_expires_at: float | None
    result: Any
    traceback: str | None
    outcome: str | None = Field(description="the latest attempt's outcome and why, in words")


class JobList(BaseModel):
    now: float
    jobs: list[JobSummary]


class JobAnswer(BaseModel):
    now: float
    job: JobDetail


class OldestWaiting(BaseModel):
    enqueued_at: float
    age_seconds: float


class LiveWorker(BaseModel):
    name: str
    host: str
    pid: int
    tasks: list[str] = Field(description="the task names it has registered")
    queues: list[str] | None = Field(description="the queues it claims from (null: every queue)")
    concurrency: int
    started_at: float
    seen_at: float = Field(description="its latest write to the workers registry")
    seen_seconds_ago: float


class UnservedTasks(BaseModel):
    queue: str
    task: str
    count: int = Field(description="ready jobs of that task in that queue")
    other_queues: bool = Field(
        description="true: live workers have the task registered, but none claims from the queue"
    )
    message: str


class PausedQueue(BaseModel):
    queue: str
    paused: bool
    paused_at: float | None = Field(description="when it was paused")
    queued: int = Field(description="queued jobs in it: they wait until it is resumed")
    running: int = Field(description="running jobs in it (started before the pause)")
    known: bool = Field(description="false: no stored job has used this queue (yet)")


class WaitingCount(BaseModel):
    count: int = Field(description="jobs this reason holds")
    at_least: bool = Field(description="true: the count reached the read's cap; there may be more")


class StatsAnswer(BaseModel):
    now: float
    tiers: list[str] = Field(description="tier names, most urgent first")
    counts: dict[str, dict[str, int]] = Field(description="tier -> state -> number of jobs")
    totals: dict[str, int] = Field(description="state -> number of jobs, all tiers")
    oldest_waiting: dict[str, OldestWaiting | None] = Field(
        description="tier -> its oldest queued job (null when none waits)"
    )
    workers: list[LiveWorker] = Field(description="the live workers of every process, by name")
    unserved: list[UnservedTasks] = Field(
        description="ready jobs that no live worker may claim, by queue and task: they stay queued"
    )
    queues: dict[str, dict[str, int]] = Field(description="queue -> state -> number of jobs")
    paused: list[PausedQueue] = Field(
        description="the paused queues, by name, with what waits in each (it starts nothing)"
    )
    waiting: dict[str, dict[str, WaitingCount]] = Field(
        description="queue -> reason -> jobs that are not starting, each under the first reason "
        "that holds it, in this order: dependency (waits for other jobs), not_due (run_at in "
        "the future), paused (its queue), unserved (no live worker may claim it), rate_limit "
        "(its rate key's window is full), concurrency (its key has its limit running); reasons "
        "that hold no job are left out"
    )


class ThroughputBucket(BaseModel):
    start: float
    succeeded: int
    failed: int
    cancelled: int


class ThroughputAnswer(BaseModel):
    now: float
    bucket_seconds: int
    buckets: list[ThroughputBucket] = Field(description="oldest first; the last one is partial")


class JobsQuery(BaseModel):
    # The documented schema is exactly what the API accepts (schemathesis checks both ways).
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None
    tier: str | None = Field(
        default=None,
        pattern=r"^(vip|regular|-?[0-9]{1,9})$",
        description="vip, regular or an integer priority",
    )
    task: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=500)
    before_id: int | None = Field(
        default=None, ge=1, le=MAX_JOB_ID, description="page: jobs older than this id"
    )


class ThroughputQuery(BaseModel):
    minutes: int = Field(default=15, ge=1, le=180)


#: Tiers shown even when they hold no job, so the dashboard's table keeps its shape.
SHOWN_TIERS = tuple(int(t) for t in Tier)


def stats_answer(stats: Stats, now: float) -> dict[str, Any]:
    tiers = sorted({p for _, p in stats.counts} | set(stats.oldest_queued) | set(SHOWN_TIERS))
    oldest: dict[str, dict[str, float] | None] = {}
    for priority in tiers:
        enqueued = stats.oldest_queued.get(priority)
        oldest[Tier.name_of(priority)] = (
            None
            if enqueued is None
            else {"enqueued_at": enqueued, "age_seconds": max(0.0, now - enqueued)}
        )
    return {
        "now": now,
        "tiers": [Tier.name_of(p) for p in tiers],
        "counts": {Tier.name_of(p): {s.value: stats.count(s, p) for s in JobState} for p in tiers},
        "totals": {s.value: stats.count(s) for s in JobState},
        "oldest_waiting": oldest,
        "queues": {
            queue: {s.value: stats.queues.get((queue, s), 0) for s in JobState}
            for queue in sorted({q for q, _ in stats.queues})
        },
        "workers": [worker_summary(w, now) for w in stats.workers],
        "unserved": [unserved_summary(u) for u in stats.unserved],
        "paused": paused_summary(stats),
        "waiting": stats.waiting.summary(),
    }


def throughput_answer(
    counts: dict[tuple[int, JobState], int], since: float, buckets: int, bucket_seconds: int
) -> dict[str, Any]:
    rows = [
        {"start": since + i * bucket_seconds, "succeeded": 0, "failed": 0, "cancelled": 0}
        for i in range(buckets)
    ]
    for (index, state), n in counts.items():
        if 0 <= index < buckets and state.finished:
            rows[index][state.value] += n
    return {"bucket_seconds": bucket_seconds, "buckets": rows}
