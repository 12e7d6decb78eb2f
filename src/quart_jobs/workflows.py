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
from typing import Any, Unpack

from .builder import EnqueueOptions, OptionKeywords, enqueue_options
from .models import Job
from .registry import Task, TaskFunc


@dataclass(frozen=True, slots=True)
class Step:
    """A call of a task, not enqueued yet: built by :func:`step`, given to
    :meth:`Jobs.chain`, :meth:`Jobs.group` or their ``tx`` counterparts."""

    target: Task | TaskFunc | str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: EnqueueOptions = field(default_factory=EnqueueOptions)

    def with_options(self, **options: Unpack[OptionKeywords]) -> Step:
        """This step with job options (the keywords of :meth:`Jobs.options`)."""
        return Step(self.target, self.args, self.kwargs, enqueue_options(**options))


def step(target: Task | TaskFunc | str, /, *args: Any, **kwargs: Any) -> Step:
    """``target(*args, **kwargs)`` as a step of a chain or a group (Celery's ``task.s(...)``)."""
    return Step(target, args, kwargs)


@dataclass(frozen=True, slots=True)
class Group:
    """What :meth:`Jobs.group` enqueued: the members, and the callback that runs once after
    all of them ended."""

    members: Sequence[Job]
    callback: Job


_JOB_FIELDS = tuple(f.name for f in fields(Job))
