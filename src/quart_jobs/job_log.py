"""The log lines of job events (started, succeeded, retried, failed, …) and their fields.

A job that fails for good is logged at ``WARNING``, so it is visible with Python's default
logging; every other event is ``INFO``. Every line carries the job's id (``job_id``); under
tracing it is logged in its attempt's span (an instrumentation's log record factory adds
``trace_id`` and ``span_id`` to the record) and its text ends with those ids.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from typing import Any

from .backends.base import Outcome
from .models import Job, JobEvent, JobState
from .presenting import outcome_text
from .tracing import Attempt

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


def in_trace(trace: Attempt | None) -> contextlib.AbstractContextManager[object]:
    """Where a line about an attempt is logged: in its span, when it has one."""
    return contextlib.nullcontext() if trace is None else trace.running()


def _trace_text(trace: Attempt | None) -> str:
    if trace is None:
        return ""
    return "".join(f" {name}={value}" for name, value in trace.log_fields.items())


def log_started(job: Job, worker: str, trace: Attempt | None = None) -> None:
    if not log.isEnabledFor(logging.INFO):  # the fields below cost more than the check
        return
    with in_trace(trace):
        log.info(
            "job %s started task=%s tier=%s attempt=%d%s",
            job.id,
            job.task,
            job.tier,
            job.attempts,
            _trace_text(trace),
            extra=job_log_fields(job, JobEvent.STARTED, worker, None),
        )


def log_outcome(
    job: Job, outcome: Outcome, elapsed: float, worker: str, trace: Attempt | None = None
) -> JobEvent:
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
    with in_trace(trace):
        log.log(
            level,
            "job %s %s task=%s tier=%s attempt=%d duration=%.3fs%s%s%s",
            job.id,
            event,
            job.task,
            job.tier,
            job.attempts,
            elapsed,
            f" error={outcome.error!r}" if outcome.error else "",
            f" why={why.value}: {text}" if why is not None else "",
            _trace_text(trace),
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
