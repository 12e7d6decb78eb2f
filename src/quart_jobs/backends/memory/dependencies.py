"""Dependencies between jobs on the memory backend: the reference of what the SQL backends'
trigger and enqueue do (:mod:`..shared_sql.deps`), in plain Python, moving jobs by the
transition table."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from ...errors import UnknownDependency
from ...models import (
    DEPENDANTS_SHOWN,
    Dependencies,
    EnqueueResult,
    Job,
    JobEvent,
    JobLink,
    JobState,
    Why,
)
from .transitions import moved

_UNFINISHED = (JobState.WAITING, JobState.QUEUED, JobState.RUNNING)


@dataclass(slots=True)
class Graph:
    """The edges of the memory store: a child's parents in the order given, each resolved
    once its parent ended."""

    parents: dict[int, list[int]] = field(default_factory=dict)
    children: dict[int, list[int]] = field(default_factory=dict)
    resolved: set[tuple[int, int]] = field(default_factory=set)  # (child, parent)
    waiting_on: dict[int, int] = field(default_factory=dict)
    run_always: set[int] = field(default_factory=set)

    def copy(self) -> Graph:
        return copy.deepcopy(self)

    def check(self, jobs: dict[int, Job], after: Sequence[int]) -> list[int]:
        """``after`` without repeats, every id known (else :class:`UnknownDependency`)."""
        order = list(dict.fromkeys(after))
        missing = [i for i in order if i not in jobs]
        if missing:
            raise UnknownDependency(
                f"job {missing[0]} does not exist (retention may have deleted it); nothing "
                "was enqueued"
            )
        return order

    def attach(
        self,
        jobs: dict[int, Job],
        results: list[EnqueueResult],
        order: list[int],
        now: float,
        run_always: bool,
    ) -> list[EnqueueResult]:
        """Give the newly created jobs of ``results`` the parents ``order``: each waits, starts
        now or is cancelled now, as its parents' states say."""
        out = []
        for result in results:
            if not result.created:
                out.append(result)
                continue
            child = result.job.id
            self.parents[child] = list(order)
            if run_always:
                self.run_always.add(child)
            waiting = 0
            for parent in order:
                self.children.setdefault(parent, []).append(child)
                if jobs[parent].state in _UNFINISHED:
                    waiting += 1
                else:
                    self.resolved.add((child, parent))
            bad = next(
                (
                    p
                    for p in order
                    if jobs[p].state in (JobState.FAILED, JobState.CANCELLED) and not run_always
                ),
                None,
            )
            job = replace(result.job, state=JobState.WAITING)
            if bad is not None:
                job = _cancelled(job, jobs[bad], now)
            elif waiting == 0:
                job = replace(job, state=moved(job.state, JobEvent.DEPENDENCIES_MET))
                job = replace(job, run_at=max(job.run_at, now))
            else:
                self.waiting_on[child] = waiting
            jobs[child] = job
            out.append(EnqueueResult(job, created=True))
        return out

    def resolve(self, jobs: dict[int, Job], ended: Iterable[int]) -> list[int]:
        """Resolve the edges of jobs that just ended; return the dependants cancelled
        (transitively). Promoted dependants become ``queued``, ready now."""
        cancelled: list[int] = []
        pending = [i for i in ended if i in self.children]
        while pending:
            parent = jobs[pending.pop(0)]
            for child in self.children.get(parent.id, ()):
                if (child, parent.id) in self.resolved:
                    continue
                self.resolved.add((child, parent.id))
                job = jobs.get(child)
                if job is None or job.state is not JobState.WAITING:
                    continue
                needs_success = child not in self.run_always
                if parent.state is not JobState.SUCCEEDED and needs_success:
                    jobs[child] = _cancelled(job, parent, parent.finished_at or 0.0)
                    self.waiting_on.pop(child, None)
                    cancelled.append(child)
                    pending.append(child)
                    continue
                left = self.waiting_on.get(child, 1) - 1
                self.waiting_on[child] = left
                if left == 0:
                    del self.waiting_on[child]
                    jobs[child] = replace(
                        job,
                        state=moved(job.state, JobEvent.DEPENDENCIES_MET),
                        run_at=max(job.run_at, parent.finished_at or job.run_at),
                    )
        return cancelled

    def allows_retry(self, jobs: dict[int, Job], job_id: int) -> bool:
        """Whether the parents of ``job_id`` let it run now (an operator's retry)."""
        for parent in self.parents.get(job_id, ()):
            state = jobs[parent].state if parent in jobs else JobState.SUCCEEDED
            if state in _UNFINISHED:
                return False
            if state is not JobState.SUCCEEDED and job_id not in self.run_always:
                return False
        return True

    def dependencies(self, jobs: dict[int, Job], job_id: int) -> Dependencies:
        def link(i: int, result: bool) -> JobLink:
            job = jobs.get(i)
            if job is None:
                return JobLink(i, None, None)
            return JobLink(i, job.task, job.state, job.result if result else None)

        return Dependencies(
            tuple(link(p, True) for p in self.parents.get(job_id, ())),
            tuple(link(c, False) for c in sorted(self.children.get(job_id, ()))[:DEPENDANTS_SHOWN]),
        )

    def forget(self, job_id: int) -> None:
        """A deleted job's edges to its parents go with it."""
        for parent in self.parents.pop(job_id, ()):
            self.resolved.discard((job_id, parent))
            kids = self.children.get(parent)
            if kids is not None and job_id in kids:
                kids.remove(job_id)
        self.run_always.discard(job_id)
        self.waiting_on.pop(job_id, None)

    def keeps(self, jobs: dict[int, Job], job_id: int) -> bool:
        """Whether retention must keep ``job_id``: a dependant of it is unfinished."""
        return any(
            c in jobs and jobs[c].state in _UNFINISHED for c in self.children.get(job_id, ())
        )


def _cancelled(job: Job, parent: Job, now: float) -> Job:
    return replace(
        job,
        state=moved(job.state, JobEvent.DEPENDENCY_FAILED),
        finished_at=now,
        error=f"dependency {parent.id} {parent.state.value}",
        why=Why.DEPENDENCY,
    )
