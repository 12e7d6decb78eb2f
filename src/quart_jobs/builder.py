"""The job builder: how a call of a task and its options become the :class:`NewJob` a store
keeps. Every enqueue path comes through here: :meth:`Jobs.enqueue`, ``jobs.options(…)``,
:meth:`Transaction.enqueue` and ``tx.options(…)``, and the periodic scheduler.

    builder = JobBuilder(registry, clock=time.time)
    new = builder.build(send_receipt, (42,), {}, enqueue_options(priority="vip", delay=5))

Job options travel apart from the task's own keyword arguments (a task may have a parameter
called ``priority`` or ``timeout``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, Self, TypedDict, TypeVar, Unpack, overload

from .backends.base import QueueLimits, queue_names
from .errors import PayloadTooLarge
from .models import DEFAULT_QUEUE, EnqueueResult, Job, NewJob, Tier
from .rate import RateLimit
from .registry import Registry, Task, TaskFunc, dump_json

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_ARGS_BYTES = 64 * 1024

#: Calls to enqueue: ``(task, args, kwargs)`` each.
Calls = Sequence[tuple[Task | TaskFunc | str, Sequence[Any], dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class EnqueueOptions:
    """Options of one enqueue (see :func:`enqueue_options`, which checks them).
    ``delay`` (seconds) and ``run_at`` (epoch) are exclusive."""

    priority: int | Tier | str | None = None
    delay: float | None = None
    run_at: float | None = None
    key: str | None = None
    owner: str | None = None
    max_attempts: int | None = None
    timeout: float | None = None
    limits: QueueLimits | None = None
    queue: str | None = None
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    rate_key: str | None = None
    rate_limit: RateLimit | None = None
    #: Start only once these jobs (or ids) succeeded; ``run_always``: once they ended at all.
    after: Sequence[Job | int] | None = None
    run_always: bool = False

    def parent_ids(self) -> list[int] | None:
        """The ids of :attr:`after` (``None``: no dependencies)."""
        if self.after is None:
            return None
        return [a.id if isinstance(a, Job) else a for a in self.after]


class OptionKeywords(TypedDict, total=False):
    """The keywords of :meth:`Jobs.options` and :meth:`Transaction.options`."""

    priority: int | Tier | str | None
    delay: float | None
    run_at: float | None
    key: str | None
    owner: str | None
    max_attempts: int | None
    timeout: float | None
    limits: QueueLimits | None
    queue: str | None
    concurrency_key: str | None
    concurrency_limit: int | None
    rate_key: str | None
    rate_limit: RateLimit | str | None
    after: Sequence[Job | int] | None
    run_always: bool


def enqueue_options(**keywords: Unpack[OptionKeywords]) -> EnqueueOptions:
    """The keywords of :meth:`Jobs.options` and :meth:`Transaction.options`, checked:
    ``ValueError`` for a combination that cannot hold."""
    given: dict[str, Any] = dict(keywords)
    rate_limit = given.pop("rate_limit", None)
    options = EnqueueOptions(
        **given, rate_limit=None if rate_limit is None else RateLimit.parse(rate_limit)
    )
    if options.delay is not None and options.run_at is not None:
        raise ValueError("give delay= or run_at=, not both")
    key, limit = options.concurrency_key, options.concurrency_limit
    if (key is None) != (limit is None):
        raise ValueError("give concurrency_key= and concurrency_limit= together")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"concurrency_limit must be an integer >= 1, not {limit!r}")
    if key is not None and not 1 <= len(key) <= 200:
        raise ValueError("concurrency_key must have 1 to 200 characters")
    if options.rate_key is not None:
        if options.rate_limit is None:
            raise ValueError('give rate_limit= with rate_key= (e.g. rate_limit="10/s")')
        if not 1 <= len(options.rate_key) <= 200:
            raise ValueError("rate_key must have 1 to 200 characters")
    if options.queue is not None:
        options = replace(options, queue=queue_names([options.queue])[0])
    if options.after is not None:
        after = options.after
        if isinstance(after, Job | int) or not all(
            isinstance(a, Job) or (isinstance(a, int) and not isinstance(a, bool)) for a in after
        ):
            raise ValueError(f"after= takes a list of jobs or job ids, not {after!r}")
        if not after:
            raise ValueError("after= needs at least one job; leave it out for none")
        options = replace(options, after=tuple(after))
    elif options.run_always:
        raise ValueError("run_always=True needs after=[...]: the jobs to run after")
    return options


class JobBuilder:
    """The defaults of new jobs and the checks of their arguments (:meth:`build`).

    :class:`Jobs` keeps one and reads and writes its settings through its own attributes
    (``jobs.max_attempts``, ``jobs.queue_limits``, …)."""

    def __init__(
        self,
        registry: Registry,
        *,
        clock: Callable[[], float] = time.time,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        default_priority: int | Tier = Tier.REGULAR,
        max_args_bytes: int = DEFAULT_MAX_ARGS_BYTES,
        queue_limits: QueueLimits | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.max_attempts = max_attempts
        self.default_priority = int(default_priority)
        self.max_args_bytes = max_args_bytes
        self.queue_limits = queue_limits

    def limits(self, options: EnqueueOptions | None) -> QueueLimits | None:
        """The caps an enqueue with ``options`` checks: its own, else the default ones."""
        return options.limits if options and options.limits else self.queue_limits

    def build_all(self, calls: Calls, options: EnqueueOptions | None = None) -> list[NewJob]:
        return [self.build(target, args, kwargs, options) for target, args, kwargs in calls]

    def build(
        self,
        target: Task | TaskFunc | str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        options: EnqueueOptions | None = None,
    ) -> NewJob:
        """The :class:`NewJob` for a call, its arguments checked: JSON, within the size limit."""
        opts = options or EnqueueOptions()
        task, full_args, full_kwargs = self.registry.resolve(target, tuple(args), kwargs or {})
        what = f"arguments of {task.name}"
        args_json = dump_json(list(full_args), what=what)
        kwargs_json = dump_json(full_kwargs, what=what)
        size = len(args_json) + len(kwargs_json)  # ASCII: characters are bytes
        if size > self.max_args_bytes:
            raise PayloadTooLarge(
                f"{what} take {size} bytes as JSON; the limit is {self.max_args_bytes}. "
                "Store large data elsewhere and pass a reference"
            )
        priority = opts.priority if opts.priority is not None else task.options.priority
        max_attempts = opts.max_attempts or task.options.max_attempts or self.max_attempts
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        rate_limit = opts.rate_limit or task.options.rate_limit
        run_at = opts.run_at
        if opts.delay is not None:
            if opts.delay < 0:
                raise ValueError(f"delay must not be negative, not {opts.delay}")
            run_at = self.clock() + opts.delay
        return NewJob(
            task=task.name,
            args=full_args,
            kwargs=full_kwargs,
            priority=self.default_priority if priority is None else Tier.parse(priority),
            run_at=run_at,
            key=opts.key,
            owner=opts.owner,
            max_attempts=max_attempts,
            timeout=opts.timeout if opts.timeout is not None else task.options.timeout,
            queue=opts.queue or task.options.queue or DEFAULT_QUEUE,
            concurrency_key=opts.concurrency_key,
            concurrency_limit=opts.concurrency_limit,
            # A limit given with the enqueue, else the task's: keyed by the task's name unless
            # the enqueue names a key.
            rate_key=opts.rate_key or (task.name if rate_limit is not None else None),
            rate_limit=rate_limit,
            encoded=(args_json, kwargs_json),
        )


#: What an :class:`Enqueuer` hands its calls to (:meth:`Jobs.enqueue_many`).
EnqueueMany = Callable[[Calls, EnqueueOptions], Awaitable[list[EnqueueResult]]]


class Enqueuer:
    """:meth:`Jobs.options` bound to a set of options."""

    def __init__(self, enqueue_many: EnqueueMany, options: EnqueueOptions) -> None:
        self._enqueue_many = enqueue_many
        self._options = options

    @property
    def settings(self) -> EnqueueOptions:
        return self._options

    async def enqueue(self, target: Task | TaskFunc | str, /, *args: Any, **kwargs: Any) -> Job:
        """Enqueue ``target(*args, **kwargs)`` with these options; return once it is durable.
        With a ``key`` that exists already, the existing job is returned."""
        (result,) = await self._enqueue_many([(target, args, kwargs)], self._options)
        return result.job

    async def enqueue_result(
        self, target: Task | TaskFunc | str, /, *args: Any, **kwargs: Any
    ) -> EnqueueResult:
        """Like :meth:`enqueue`, also telling whether a job was created (``False``: same key)."""
        (result,) = await self._enqueue_many([(target, args, kwargs)], self._options)
        return result


V = TypeVar("V")


class BuilderSetting(Generic[V]):
    """A setting of a :class:`JobBuilder` shown as an attribute of the object that keeps the
    builder (in ``_builder``): ``jobs.max_attempts = 3`` sets the builder's, through
    ``convert`` when one is given."""

    def __init__(self, convert: Callable[[Any], V] | None = None) -> None:
        self._convert = convert
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type) -> V: ...

    def __get__(self, instance: Any, owner: type) -> Self | V:
        if instance is None:
            return self
        value: V = getattr(instance._builder, self._name)
        return value

    def __set__(self, instance: Any, value: V) -> None:
        converted = value if self._convert is None else self._convert(value)
        setattr(instance._builder, self._name, converted)
