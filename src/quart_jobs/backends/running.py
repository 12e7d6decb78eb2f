"""Whether the caller runs inside a job: backends give a running job's own writes precedence."""

from __future__ import annotations

import contextvars

#: Set by the worker in each job's own asyncio task (its context): ``True`` while a task runs.
running_job: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "quart_jobs_running_job", default=False
)


def in_job() -> bool:
    """``True`` in the code of a running task (and what it awaits in its own asyncio task)."""
    return running_job.get()
