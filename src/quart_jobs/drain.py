"""What ``await jobs.drain()`` returns: how the attempts it ran ended."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from .models import Job, JobState

#: Worker events that end an attempt, and the state the job is in afterwards.
_STATE_AFTER = {
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
    "retried": JobState.QUEUED,
    "requeued": JobState.QUEUED,
}


@dataclass(slots=True, eq=False)
class Drained(Mapping[JobState, int]):
    """Counts of the attempts a drain ran, by the state each left its job in.

    ``drained[JobState.SUCCEEDED]``, ``drained.succeeded``, ``drained.failed`` (out of
    attempts), ``drained.cancelled``; ``drained.retried`` counts attempts that failed with
    attempts left: their job is queued again after its backoff delay, which a drain does not
    wait for (drain again once the delay passed: advance the injected clock in a test).
    A job retried at once, with no delay, is run again by the same drain and counted twice.
    """

    counts: dict[JobState, int] = field(default_factory=dict)

    def record(self, event: str, job: Job, elapsed: float | None) -> None:
        """The event hook a draining worker reports to."""
        state = _STATE_AFTER.get(event)
        if state is not None:
            self.counts[state] = self.counts.get(state, 0) + 1

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
    def retried(self) -> int:
        return self[JobState.QUEUED]

    @property
    def total(self) -> int:
        """Attempts run."""
        return sum(self.counts.values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{s.value}={n}" for s, n in self.counts.items())
        return f"Drained({shown})"
