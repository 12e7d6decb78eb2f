"""Job events that backends announce to their subscribers: "jobs are ready", "job N finished".

The callbacks run on the event loop. Delivery is best effort on every backend (a notification
can be lost while a listener reconnects or its queue is full): a worker still polls, and a
waiter re-reads its job now and then, so a lost event only costs time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence

from ..models import JobState
from .base import Outcome
from .effects import recorded_outcome

log = logging.getLogger("quart_jobs.events")

ReadyCallback = Callable[[], None]
FinishedCallback = Callable[[int], None]


class Subscribers:
    """The callbacks of one process for the two kinds of event."""

    def __init__(self) -> None:
        self.ready: list[ReadyCallback] = []
        self.finished: list[FinishedCallback] = []

    def add_ready(self, callback: ReadyCallback) -> None:
        if callback not in self.ready:
            self.ready.append(callback)

    def remove_ready(self, callback: ReadyCallback) -> None:
        with contextlib.suppress(ValueError):
            self.ready.remove(callback)

    def add_finished(self, callback: FinishedCallback) -> None:
        if callback not in self.finished:
            self.finished.append(callback)

    def remove_finished(self, callback: FinishedCallback) -> None:
        with contextlib.suppress(ValueError):
            self.finished.remove(callback)

    def call_ready(self) -> None:
        for callback in tuple(self.ready):
            try:
                callback()
            except Exception:
                log.exception("a 'jobs ready' subscriber failed")

    def call_finished(self, job_ids: Iterable[int]) -> None:
        callbacks = tuple(self.finished)
        if not callbacks:
            return
        for job_id in job_ids:
            for callback in callbacks:
                try:
                    callback(job_id)
                except Exception:
                    log.exception("a 'job finished' subscriber failed (job %s)", job_id)


def outcome_events(outcomes: Sequence[Outcome], held: Sequence[bool]) -> tuple[bool, list[int]]:
    """What recording ``outcomes`` announces: whether jobs went back to the queue (now or at a
    later ``run_at``), and the ids of the jobs that reached an end state. Outcomes whose write
    was refused (``held`` false: the lease was lost) announce nothing."""
    ready = False
    ended: list[int] = []
    for outcome, was_held in zip(outcomes, held, strict=True):
        if not was_held:
            continue
        if outcome.effects is not None:
            outcome = recorded_outcome(outcome)
        if outcome.state is JobState.QUEUED or outcome.run_at is not None:
            ready = True
        else:
            ended.append(outcome.lease.job_id)
    return ready, ended
