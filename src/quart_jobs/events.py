"""Job events in this process: each one told to the hooks of a :class:`~quart_jobs.Jobs`
(``jobs.event_hooks``), and a job's end waking the callers waiting for it (``jobs.wait``).
The workers of this process, its enqueues, its transactions and its cancels all emit here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from .models import Job, JobEvent
from .waiting import Waiters

log = logging.getLogger("quart_jobs")

#: Events after which a job is in an end state (they wake its waiters).
ENDING_EVENTS = frozenset({JobEvent.SUCCEEDED, JobEvent.FAILED, JobEvent.CANCELLED})

#: A hook: the event, the job, and the run time in seconds of an attempt that ended.
EventHook = Callable[[JobEvent, Job, float | None], None]


class JobEvents:
    """The hooks and the waiters that this process's job events reach. ``hooks`` is the
    list of ``jobs.event_hooks`` itself: a hook appended there hears the next event."""

    def __init__(self, waiters: Waiters, hooks: list[EventHook]) -> None:
        self._waiters = waiters
        self.hooks = hooks

    def emit(self, event: JobEvent, job: Job, elapsed: float | None) -> None:
        """Tell every hook that ``event`` happened to ``job``; a hook that raises is logged and
        ignored."""
        if event in ENDING_EVENTS and self._waiters:
            self._waiters.wake((job.id,))
        for hook in self.hooks:
            try:
                hook(event, job, elapsed)
            except BaseException:  # SystemExit too: a hook never stops a worker or the caller
                log.exception("job event hook failed (%s, job %s)", event, job.id)

    def each(self, event: JobEvent, jobs: Iterable[Job]) -> None:
        """:meth:`emit` ``event`` for every job of ``jobs`` (not read when nothing listens)."""
        if self.hooks or event in ENDING_EVENTS:
            for job in jobs:
                self.emit(event, job, None)
