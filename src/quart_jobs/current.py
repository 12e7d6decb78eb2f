"""The job a task runs for: ``current_job()``, set by the worker for each attempt (in the
attempt's own asyncio task, and copied into a sync task's thread)."""

from __future__ import annotations

import contextvars

from .errors import JobsError
from .models import Job

_current_job: contextvars.ContextVar[Job] = contextvars.ContextVar("quart_jobs_current_job")


def current_job() -> Job:
    """The job being run, as claimed (id, attempt number, arguments); inside a task only."""
    try:
        return _current_job.get()
    except LookupError:
        raise JobsError("current_job() is only available inside a running task") from None


def set_current_job(job: Job) -> None:
    """Make ``job`` the current job of this context (the worker, at an attempt's start)."""
    _current_job.set(job)
