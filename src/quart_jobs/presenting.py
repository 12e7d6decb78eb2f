"""How a job is shown: the JSON the admin API and ``quart-jobs ... --json`` give, and the words
``quart-jobs show``, the dashboard and the worker's log use for what became of it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .models import Dependencies, Job, JobLink, JobState, Why


def job_summary(job: Job) -> dict[str, Any]:
    """A job as JSON-able data, without its arguments and result (lists, dashboards)."""
    return {
        "id": job.id,
        "task": job.task,
        "tier": job.tier,
        "priority": job.priority,
        "state": job.state.value,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "owner": job.owner,
        "queue": job.queue,
        "enqueued_at": job.enqueued_at,
        "run_at": job.run_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "worker": job.worker,
        "cancel_requested": job.cancel_requested,
        "error": job.error,
        "why": None if job.why is None else job.why.value,
        "progress": job.progress,
        "progress_message": job.progress_message,
    }


def job_detail(job: Job) -> dict[str, Any]:
    """A job as JSON-able data, whole."""
    return {
        **job_summary(job),
        "args": list(job.args),
        "kwargs": dict(job.kwargs),
        "key": job.key,
        "timeout": job.timeout,
        "concurrency_key": job.concurrency_key,
        "concurrency_limit": job.concurrency_limit,
        "lease_expires_at": job.lease_expires_at,
        "result": job.result,
        "traceback": job.traceback,
        "outcome": outcome_text(job),
    }


def dependencies_detail(deps: Dependencies) -> dict[str, Any]:
    """A job's :class:`Dependencies` as JSON-able data: parents and dependants (id, task,
    state) and the parents' counts by state (a group's callback)."""

    def link(item: JobLink) -> dict[str, Any]:
        return {
            "id": item.id,
            "task": item.task,
            "state": None if item.state is None else item.state.value,
        }

    return {
        "parents": [link(p) for p in deps.parents],
        "dependants": [link(d) for d in deps.dependants],
        "counts": deps.counts() if deps.parents else None,
    }


def describe_dependencies(deps: Dependencies) -> list[tuple[str, str]]:
    """``(label, text)`` lines for people: what a job depends on, what depends on it, and the
    parents' counts (a group's callback)."""

    def links(items: tuple[JobLink, ...]) -> str:
        return ", ".join(
            f"{i.id} {i.task} ({i.state.value})" if i.state else f"{i.id} (deleted)" for i in items
        )

    lines = []
    if deps.parents:
        counts = deps.counts()
        summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        lines.append(("depends on", links(deps.parents)))
        lines.append(("parents", f"{summary} of {len(deps.parents)}"))
    if deps.dependants:
        lines.append(("dependants", links(deps.dependants)))
    return lines


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _attempts_left(job: Job) -> str:
    left = max(0, job.max_attempts - job.attempts)
    return "no attempts left" if left == 0 else f"{left} attempt{'s' if left > 1 else ''} left"


def outcome_text(job: Job) -> str | None:
    """What became of the job's latest attempt and why, in the words ``quart-jobs show``, the
    dashboard and the job log use; ``None`` when nothing went wrong (yet)."""
    why, error = job.why, job.error or "no error recorded"
    attempt = f"attempt {job.attempts}/{job.max_attempts}"
    if job.state is JobState.QUEUED and why is Why.BACKOFF:
        return f"{attempt} failed: {error} — retry at {_utc(job.run_at)} (backoff)"
    if job.state is JobState.QUEUED and why is Why.RETRY_REQUESTED:
        return f"{attempt} — retry at {_utc(job.run_at)} (the task asked: {error})"
    if job.state is JobState.QUEUED and why is Why.LEASE_EXPIRED:
        return f"{attempt} lost: {error} — runs again"
    if job.state is JobState.FAILED:
        if why is Why.NOT_RETRYABLE:
            return f"failed: {error} — not retried (not in retry_on)"
        if why is Why.FAILED_BY_TASK:
            return f"failed by the task: {error}, {_attempts_left(job)}"
        if why is Why.LEASE_EXPIRED:
            return f"failed: {error} — on its last attempt ({attempt})"
        if why is Why.GAVE_UP:
            return f"failed: {error} — gave up after {attempt}"
        return f"failed: {error}"
    if job.state is JobState.CANCELLED:
        return f"cancelled: {job.error}" if job.error else "cancelled"
    return None
