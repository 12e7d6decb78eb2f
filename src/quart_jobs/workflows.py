"""Workflows: jobs that start after other jobs. A :class:`Step` is a call of a task not yet
enqueued (``step(resize, path)``); :meth:`Jobs.chain` and :meth:`Jobs.group` enqueue steps
with their dependencies in one transaction::

    jobs_of_chain = await jobs.chain(step(download, url), step(resize), step(upload))
    group = await jobs.group([step(export, n) for n in range(500)], then=step(report))

Inside a task, ``await current_job().parent_results()`` returns the results of the jobs it
depended on, in the order given, and ``await current_job().parent_counts()`` how many of them
succeeded, failed or were cancelled (what a group's callback is told).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Unpack

from .errors import JobsError
from .models import Job, JobState

if TYPE_CHECKING:
    from .backends.base import Backend
    from .builder import EnqueueOptions, OptionKeywords
    from .registry import Task, TaskFunc


@dataclass(frozen=True, slots=True)
class Step:
    """A call of a task, not enqueued yet: built by :func:`step`, given to
    :meth:`Jobs.chain`, :meth:`Jobs.group` or their ``tx`` counterparts."""

    target: Task | TaskFunc | str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: EnqueueOptions = field(default_factory=lambda: _default_options())

    def with_options(self, **options: Unpack[OptionKeywords]) -> Step:
        """This step with job options (the keywords of :meth:`Jobs.options`)."""
        from .builder import enqueue_options

        return Step(self.target, self.args, self.kwargs, enqueue_options(**options))


def step(target: Task | TaskFunc | str, /, *args: Any, **kwargs: Any) -> Step:
    """``target(*args, **kwargs)`` as a step of a chain or a group (Celery's ``task.s(...)``)."""
    return Step(target, args, kwargs)


def _default_options() -> EnqueueOptions:
    from .builder import EnqueueOptions

    return EnqueueOptions()


@dataclass(frozen=True, slots=True)
class Group:
    """What :meth:`Jobs.group` enqueued: the members, and the callback that runs once after
    all of them ended."""

    members: Sequence[Job]
    callback: Job


_JOB_FIELDS = tuple(f.name for f in fields(Job))


@dataclass(frozen=True, slots=True)
class RunningJob(Job):
    """The job a task runs (:func:`~quart_jobs.current_job`): every field of :class:`Job`,
    and reads about the jobs it depended on."""

    store: Backend | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, job: Job, store: Backend | None) -> RunningJob:
        return cls(**{name: getattr(job, name) for name in _JOB_FIELDS}, store=store)

    async def parent_results(self) -> list[Any]:
        """The results of the jobs this one was enqueued ``after``, in the order given there
        (``None`` for one that did not succeed; ``[]`` for a job without dependencies)."""
        dependencies = await self._store().dependencies(self.id)
        return [p.result if p.state is JobState.SUCCEEDED else None for p in dependencies.parents]

    async def parent_counts(self) -> dict[str, int]:
        """How many of the jobs this one depended on ``succeeded``, ``failed`` or were
        ``cancelled`` (and ``unfinished``: 0 once it runs, unless it was retried by hand)."""
        return (await self._store().dependencies(self.id)).counts()

    def _store(self) -> Backend:
        if self.store is None:
            raise JobsError("this job was not claimed by a worker: it has no store to read")
        return self.store
