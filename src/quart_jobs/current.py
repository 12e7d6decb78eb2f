"""The job a task runs for: ``current_job()``, set by the worker for each attempt (in the
attempt's own asyncio task, and copied into a sync task's thread)."""

from __future__ import annotations

import contextvars

from .errors import JobsError
from .progress import Current, RunningJob

_current_job: contextvars.ContextVar[Current] = contextvars.ContextVar("quart_jobs_current_job")


def current_job() -> RunningJob:
    """The job being run, as claimed (id, attempt number, arguments), and its
    :meth:`~quart_jobs.progress.RunningJob.progress` to report how far it got; inside a task
    only (sync tasks too: they run with the caller's context)."""
    try:
        current = _current_job.get()
    except LookupError:
        raise JobsError("current_job() is only available inside a running task") from None
    return current.running()


#: Make a :class:`Current` this context's running job (the worker, at an attempt's start).
set_current_job = _current_job.set
