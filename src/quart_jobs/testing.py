"""The test-mode drain: ``await jobs.drain()`` runs, in the test's process, every job that is
ready (and the jobs they enqueue) until none is ready and none runs, then answers how they
ended (:class:`Drained`).

A burst worker does it: the worker of production, so retries, timeouts and hooks behave the
same. (Not to be confused with the drain of a worker's shutdown, :mod:`quart_jobs.shutdown`.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field

from .events import EventHook
from .models import Job, JobEvent, JobState
from .worker import Worker

#: Worker events that end a job, and its end state.
_ENDED = {
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
}


@dataclass(slots=True, eq=False)
class Drained(Mapping[JobState, int]):
    """The jobs a drain ran to an end, counted by end state, a mapping of :class:`JobState`
    (``succeeded``, ``failed``, ``cancelled``) to counts: ``drained == {JobState.SUCCEEDED: 2}``,
    ``drained[JobState.FAILED]``, ``drained.succeeded``, ``drained.failed`` (out of attempts),
    ``drained.cancelled``.

    Attempts that did not end their job are counted apart: ``drained.retried``, attempts that
    failed with attempts left (their job is queued again after its backoff delay, which a
    drain does not wait for: drain again once the delay passed, advancing the injected clock in
    a test; a retry with no delay is run by the same drain, each attempt counted), and
    ``drained.requeued``, attempts put back in the queue uncharged (stopped before they ended).
    ``drained.total`` counts every attempt run.
    """

    counts: dict[JobState, int] = field(default_factory=dict)
    retried: int = 0
    requeued: int = 0

    def record(self, event: str, job: Job, elapsed: float | None) -> None:
        """The event hook a draining worker reports to."""
        state = _ENDED.get(event)
        if state is not None:
            self.counts[state] = self.counts.get(state, 0) + 1
        elif event == "retried":
            self.retried += 1
        elif event == "requeued":
            self.requeued += 1

    def __getitem__(self, state: JobState) -> int:
        return self.counts.get(JobState(state), 0)

    def __iter__(self) -> Iterator[JobState]:
        return iter(s for s in JobState if s in self.counts)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def succeeded(self) -> int:
        return self[JobState.SUCCEEDED]

    @property
    def failed(self) -> int:
        return self[JobState.FAILED]

    @property
    def cancelled(self) -> int:
        return self[JobState.CANCELLED]

    @property
    def total(self) -> int:
        """Attempts run: the jobs ended, plus the attempts retried or put back."""
        return sum(self.counts.values()) + self.retried + self.requeued

    def __repr__(self) -> str:
        shown = [f"{s.value}={n}" for s, n in self.items()]
        shown += [
            f"{name}={n}"
            for name, n in (("retried", self.retried), ("requeued", self.requeued))
            if n
        ]
        return f"Drained({', '.join(shown)})"


async def burst_drain(
    start: Callable[[EventHook], Worker],
    stop: Callable[[Worker], Awaitable[None]],
    on_event: EventHook,
    timeout: float | None,
) -> Drained:
    """Run the ready jobs with the burst worker that ``start(hook)`` starts, reporting each job
    event to the returned :class:`Drained` and then to ``on_event``; ``stop`` it when it is done.
    After ``timeout`` seconds the running jobs are put back in the queue and
    :class:`TimeoutError` is raised."""
    drained = Drained()

    def both(event: JobEvent, job: Job, elapsed: float | None) -> None:
        drained.record(event, job, elapsed)
        on_event(event, job, elapsed)

    worker = start(both)
    try:
        async with asyncio.timeout(timeout):
            await worker.wait()
    except TimeoutError:
        raise TimeoutError(f"drain: jobs were still running after {timeout:g}s") from None
    finally:
        await stop(worker)
    return drained
