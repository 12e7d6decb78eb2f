"""The log lines of job events (started, succeeded, retried, failed, …) and their fields.

A job that fails for good is logged at ``WARNING``, so it is visible with Python's default
logging; every other event is ``INFO``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from .backends.base import Outcome
from .models import Job, JobEvent, JobState
from .presenting import outcome_text

log = logging.getLogger("quart_jobs.worker")


def job_log_fields(job: Job, event: str, worker: str, elapsed: float | None) -> dict[str, Any]:
    """The fields of a job event's log line (a JSON formatter emits them as keys)."""
    fields: dict[str, Any] = {
        "event": event,
        "job_id": job.id,
        "task": job.task,
        "tier": job.tier,
        "attempt": job.attempts,
        "worker": worker,
    }
    if elapsed is not None:
        fields["duration"] = round(elapsed, 6)
    return fields


def log_started(job: Job, worker: str) -> None:
    if not log.isEnabledFor(logging.INFO):  # the fields below cost more than the check
        return
    log.info(
        "job %s started task=%s tier=%s attempt=%d",
        job.id,
        job.task,
        job.tier,
        job.attempts,
        extra=job_log_fields(job, JobEvent.STARTED, worker, None),
    )


def log_outcome(job: Job, outcome: Outcome, elapsed: float, worker: str) -> JobEvent:
    """Log an outcome the store recorded; returns its event."""
    event = outcome.event
    level = logging.WARNING if event is JobEvent.FAILED else logging.INFO
    if not log.isEnabledFor(level):
        return event
    fields = job_log_fields(job, event, worker, elapsed)
    if outcome.error:
        fields["error"] = outcome.error
    why = outcome.stored_why
    text = None
    if why is not None:
        fields["why"] = why.value
        text = outcome_text(after(job, outcome))
    log.log(
        level,
        "job %s %s task=%s tier=%s attempt=%d duration=%.3fs%s%s",
        job.id,
        event,
        job.task,
        job.tier,
        job.attempts,
        elapsed,
        f" error={outcome.error!r}" if outcome.error else "",
        f" why={why.value}: {text}" if why is not None else "",
        extra=fields,
    )
    return event


def after(job: Job, outcome: Outcome) -> Job:
    """``job`` as ``outcome`` leaves it (what reading it back would show, near enough)."""
    if outcome.state is JobState.FAILED and outcome.run_at is not None:
        state, run_at = JobState.QUEUED, outcome.run_at
    else:
        state, run_at = outcome.state, job.run_at
    return replace(
        job,
        state=state,
        run_at=run_at,
        error=outcome.error,
        traceback=outcome.traceback,
        why=outcome.stored_why,
    )
