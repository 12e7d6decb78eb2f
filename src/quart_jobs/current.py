"""The job a task runs for: ``current_job()``, set by the worker for each attempt (in the
attempt's own asyncio task, and copied into a sync task's thread)."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

from .errors import JobsError
from .models import Job
from .workflows import RunningJob

if TYPE_CHECKING:
    from .backends.base import Backend

_current_job: contextvars.ContextVar[tuple[Job, Backend | None]] = contextvars.ContextVar(
    "quart_jobs_current_job"
)


def current_job() -> RunningJob:
    """The job being run, as claimed (id, attempt number, arguments), with the reads a task
    may make about it (:meth:`RunningJob.parent_results`); inside a task only."""
    try:
        job, store = _current_job.get()
    except LookupError:
        raise JobsError("current_job() is only available inside a running task") from None
    return RunningJob.of(job, store)


def set_current_job(job: Job, store: Backend | None = None) -> None:
    """Make ``job`` the current job of this context (the worker, at an attempt's start), with
    the store it came from (read by :meth:`RunningJob.parent_results`)."""
    _current_job.set((job, store))
