"""``Jobs``: the one object an application talks to (register tasks, enqueue, inspect, run
workers). Each call is done by the module named for it: :mod:`.builder` builds jobs,
:mod:`.job_operations` reaches the store, :mod:`.local_workers` runs this process's workers."""

from __future__ import annotations

import builtins
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar, Unpack, overload

from .backends import DEFAULT_DATABASE_URL, Backend
from .backends.base import QueueLimits
from .backends.database import AppDatabase
from .backends.operator import OperatorStore
from .builder import (
    DEFAULT_MAX_ARGS_BYTES,
    DEFAULT_MAX_ATTEMPTS,
    BuilderSetting,
    Calls,
    EnqueueOptions,
    Enqueuer,
    JobBuilder,
    OptionKeywords,
    enqueue_options,
)
from .errors import ConfigurationError
from .events import EventHook, JobEvents
from .fairness import Weights
from .job_operations import JobOperations
from .local_workers import LocalWorkers
from .maintenance.retention import parse_retention
from .models import (
    FINISHED_STATES,
    Dependencies,
    EnqueueResult,
    Job,
    JobEvent,
    JobFilter,
    JobState,
    Stats,
    Tier,
    UnservedTask,
    WorkerRecord,
)
from .periodic import Schedule, Scheduler, Schedules
from .registry import Registry, Task, TaskFunc, task_options
from .retries import Backoff, RetryOn
from .store_handle import StoreHandle
from .testing import Drained
from .transaction import Transaction
from .waiting import Waiters
from .worker import Worker, WorkerSettings
from .workflows import Group, Step

T = TypeVar("T")


class Jobs:
    """Tasks, a backend and the workers of one process.

    :param url: The store: ``sqlite:///PATH`` (relative to the working directory;
        ``sqlite:////ABS/PATH`` for an absolute one; created with its directory),
        ``postgresql://...`` (with the ``postgres`` extra), or ``memory://`` (in this process
        only, gone when it exits: for tests). A :class:`~quart_jobs.backends.Backend` instance
        works too.
    :param max_attempts: Attempts a job gets when neither its task nor ``options()`` says.
    :param default_priority: The priority of a job when neither its task nor ``options()``
        says.
    :param max_args_bytes: The largest JSON encoding of a job's arguments;
        :class:`PayloadTooLarge` past it.
    :param queue_limits: Caps on queued jobs, checked atomically at every enqueue
        (:class:`QueueFull` past them).
    :param worker_settings: The settings of the workers this object starts.
    :param clock: Seconds since the epoch; tests pass a fake clock to drive delays and leases.
    :param backend_options: Passed to the backend: for SQLite ``synchronous`` (``FULL`` or
        ``NORMAL``), ``busy_timeout_ms`` and ``reader_threads``; for PostgreSQL ``schema``,
        ``min_size``, ``max_size``, ``connect_timeout``, ``pool_timeout``.

    Nothing touches the store until :meth:`open` (or ``async with jobs:``).
    """

    def __init__(
        self,
        url: str | Backend = DEFAULT_DATABASE_URL,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        default_priority: int | Tier = Tier.REGULAR,
        max_args_bytes: int = DEFAULT_MAX_ARGS_BYTES,
        queue_limits: QueueLimits | None = None,
        worker_settings: WorkerSettings | None = None,
        clock: Callable[[], float] = time.time,
        backend_options: dict[str, Any] | None = None,
        weights: Weights | Mapping[int, float] | None = None,
        retention: float | str | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ConfigurationError(f"JOB_MAX_ATTEMPTS must be at least 1, not {max_attempts}")
        self.registry = Registry()
        self._handle = StoreHandle(url, backend_options)
        self._builder = JobBuilder(
            self.registry,
            clock=clock,
            max_attempts=max_attempts,
            default_priority=default_priority,
            max_args_bytes=max_args_bytes,
            queue_limits=queue_limits,
        )
        self.worker_settings = worker_settings or WorkerSettings()
        if weights is not None:
            #: Shares of the priority levels for this process's workers (see ``Weights``).
            self.worker_settings = replace(self.worker_settings, weights=Weights.of(weights))
        #: Seconds a finished job is kept before a running worker (or served app) deletes it;
        #: ``None`` keeps them until ``quart-jobs purge``. Accepts ``"7d"``, ``"12h"``, ``"off"``.
        self.retention = parse_retention(retention)
        #: Entered around every job this process runs (the Quart extension: an app context).
        self.job_context: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None
        #: Called for every job event (a :class:`JobEvent`: ``ENQUEUED`` by this process,
        #: ``STARTED``, ``SUCCEEDED``, ``FAILED`` out of attempts, ``RETRIED`` with another
        #: attempt scheduled, ``CANCELLED``, ``REQUEUED`` on shutdown), with the run time in
        #: seconds for the events that end an attempt. A hook that raises is logged and ignored.
        self.event_hooks: list[Callable[[JobEvent, Job, float | None], None]] = []
        self._waiters = Waiters()
        self._events = JobEvents(self._waiters, self.event_hooks)
        self._schedules = Schedules(self.registry, self.enqueue_many)
        self._local = LocalWorkers(self.registry, self._schedules, self._builder)
        #: Asked before :meth:`retry` queues a job again: a guard returns ``None`` to allow it,
        #: or the reason it is refused (say, "the order was cancelled"), which
        #: :class:`~quart_jobs.errors.RetryRefused` carries to the admin (409) and the CLI.
        self.retry_guards: list[Callable[[Job], Awaitable[str | None]]] = []
        self._operations = JobOperations(
            self._handle, self._builder, self._events, self._local, self.retry_guards
        )

    # --- configuration -----------------------------------------------------------------------

    def _configure(
        self, url: str | Backend, *, backend_options: dict[str, Any] | None = None, **settings: Any
    ) -> None:
        """Change the store or settings before :meth:`open` (the Quart extension does, from
        ``app.config``)."""
        self._handle.configure(url, backend_options)
        for name, value in settings.items():
            if not hasattr(self, name):
                raise ConfigurationError(f"unknown setting {name!r}")
            if name == "retention":
                value = parse_retention(value)
            setattr(self, name, value)

    max_attempts = BuilderSetting[int]()
    """Attempts a job gets when neither its task nor ``options()`` says."""
    default_priority = BuilderSetting[int](int)
    """The priority of a job when neither its task nor ``options()`` says."""
    max_args_bytes = BuilderSetting[int]()
    """The largest JSON encoding of a job's arguments (:class:`PayloadTooLarge` past it)."""
    queue_limits = BuilderSetting[QueueLimits | None]()
    """Caps on queued jobs checked at every enqueue (``options(limits=…)`` overrides them)."""
    clock = BuilderSetting[Callable[[], float]]()
    """Seconds since the epoch: the time of enqueues, delays and leases."""

    @property
    def _store(self) -> Backend:
        """The store, created from the URL on first use (opened by :meth:`open`)."""
        return self._handle.backend

    # --- tasks -------------------------------------------------------------------------------

    @overload
    def task(self, func: TaskFunc, /) -> Task: ...

    @overload
    def task(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        priority: int | Tier | str | None = None,
        queue: str | None = None,
        rate_limit: str | None = None,
        retry_on: RetryOn | None = None,
        backoff: Backoff | None = None,
    ) -> Callable[[TaskFunc], Task]: ...

    def task(
        self,
        func: TaskFunc | None = None,
        /,
        *,
        name: str | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        priority: int | Tier | str | None = None,
        queue: str | None = None,
        rate_limit: str | None = None,
        retry_on: RetryOn | None = None,
        backoff: Backoff | None = None,
    ) -> Task | Callable[[TaskFunc], Task]:
        """Register a sync or async function as a task: ``@jobs.task`` or ``@jobs.task(...)``.

        :param name: The name jobs store to find the task; every process that runs it must
            register it under the same name. Default ``module.qualname``, a ``__main__`` module
            named as it would be imported (``python tasks.py`` registers ``tasks.send``).
        :param max_attempts: Attempts for this task's jobs (default: the ``Jobs`` setting).
        :param timeout: Seconds an attempt may run before it fails with ``TimeoutError``.
        :param priority: This task's default priority (a :class:`Tier`, its name, or an int).
        :param queue: The queue of this task's jobs (default ``"default"``).
        :param rate_limit: ``"N/PERIOD"`` (``"10/s"``, ``"100/m"``, ``"5/h"``, ``"20/5s"``): at
            most N of this task's jobs start in any window of the period, across every
            process on the store (the key is the task's name); the others wait, queued.
        :param retry_on: Retry only these exceptions (a tuple of classes); any other fails the
            job at once. Default: retry every exception.
        :param backoff: ``attempt -> seconds`` before the next attempt (1 for the first
            failed attempt). Default: the worker's exponential backoff with jitter.

        The function must be defined with ``def`` at module level (another process imports it
        by name); its arguments and result must be JSON. Sync functions run on worker threads
        (abandoned past their timeout), async ones on the event loop.
        """
        options = task_options(
            max_attempts, timeout, priority, queue, rate_limit, retry_on, backoff
        )
        return self.registry.task(func, name=name, options=options)

    def register(self, func: TaskFunc, *, name: str | None = None) -> Task:
        """Register ``func`` as a task without decorating it (``@jobs.task`` does the same)."""
        return self.registry.register(func, name=name)

    def periodic(
        self,
        cron: str | None = None,
        *,
        every: float | None = None,
        name: str | None = None,
        timezone: str = "UTC",
        queue: str = "default",
        priority: int | Tier | str | None = None,
    ) -> Callable[[TaskFunc], Task]:
        """Register a task that runs on a schedule: ``@jobs.periodic(cron="*/5 * * * *")`` (five
        cron fields, in ``timezone``) or ``@jobs.periodic(every=30)`` (seconds, at least 1).

        The function takes no required argument; if it accepts a ``timestamp`` keyword, it gets
        the scheduled moment (seconds since the epoch). Every process running a worker enqueues
        the schedule's moments; each moment becomes one job (see :mod:`quart_jobs.periodic`)."""
        return self._schedules.decorator(cron, every, name, timezone, queue, priority)

    @property
    def schedules(self) -> builtins.list[Schedule]:
        """The periodic tasks registered here, by name."""
        return self._schedules.listed()

    @property
    def scheduler(self) -> Scheduler:
        """What enqueues the schedules' moments; started with this process's first worker.
        ``await jobs.scheduler.tick()`` runs one round now (tests, with their own clock)."""
        return self._schedules.scheduler(self.clock)

    # --- enqueue -----------------------------------------------------------------------------

    def options(self, **options: Unpack[OptionKeywords]) -> Enqueuer:
        """Set job options for an enqueue: ``await jobs.options(priority="vip").enqueue(f, x)``.

        The keywords: ``priority`` (a :class:`Tier`, its name, or an int), ``delay`` (seconds)
        or ``run_at`` (seconds since the epoch), ``key`` (one job per key), ``owner``,
        ``max_attempts``, ``timeout`` (seconds per attempt), ``limits``, ``queue``,
        ``concurrency_key`` and ``concurrency_limit``, ``rate_key`` and ``rate_limit``.

        ``limits`` caps the queue for this enqueue (:class:`~quart_jobs.errors.QueueFull` past
        them), checked atomically with the insert; an existing ``key`` is returned regardless.
        ``queue`` overrides the task's queue. ``concurrency_key`` with ``concurrency_limit``: at
        most that many jobs with this key run at once, across every process. ``rate_limit``
        (``"N/PERIOD"``, e.g. ``"100/m"``) with ``rate_key`` (default: the task's name): at most
        N jobs with this key start in any window of the period, across every process."""
        return Enqueuer(self.enqueue_many, enqueue_options(**options))

    async def enqueue(self, target: Task | TaskFunc | str, /, *args: Any, **kwargs: Any) -> Job:
        """Enqueue ``target(*args, **kwargs)``; return once the job is durable."""
        (result,) = await self.enqueue_many([(target, args, kwargs)])
        return result.job

    async def enqueue_many(
        self, calls: Calls, options: EnqueueOptions | None = None
    ) -> list[EnqueueResult]:
        """Enqueue several calls, ``(task, args, kwargs)`` each, in one transaction."""
        return await self._operations.enqueue_many(calls, options)

    async def chain(self, *steps: Step) -> builtins.list[Job]:
        """Enqueue ``steps`` (:func:`~quart_jobs.step`) in one transaction, each to start once
        the one before succeeded; a failure cancels the rest. The jobs, in order."""
        return await self.transaction(lambda tx: tx.chain(*steps))

    async def group(self, members: Sequence[Step], *, then: Step) -> Group:
        """Enqueue ``members`` and a callback ``then`` in one transaction; the callback runs
        once, after every member ended, whatever their outcome."""
        return await self.transaction(lambda tx: tx.group(members, then=then))

    async def dependencies(self, job_id: int) -> Dependencies:
        """The jobs ``job_id`` depends on (with their results) and the jobs that depend on it."""
        return await self._operations.dependencies(job_id)

    async def transaction(self, func: Callable[[Transaction], T]) -> T:
        """Run ``func(tx)`` in one transaction of the jobs' database and return its value once
        committed: the application's statements (``tx.execute``) and its enqueues
        (``tx.enqueue``) are kept together or, if ``func`` raises, not at all. ``func`` is
        synchronous and should be short (no network calls): on SQLite it runs on the writer
        thread, inside a group commit. Workers are woken after the commit."""
        return await self._operations.transaction(func)

    # --- inspect and control -----------------------------------------------------------------

    async def get(self, job_id: int) -> Job:
        """The job with this id, as stored now; :class:`JobNotFound` if there is none."""
        return await self._operations.get(job_id)

    async def find(self, job_id: int) -> Job | None:
        """The job with this id, or ``None`` (also for an id no job can have: 0, negative, or
        past :data:`~quart_jobs.models.MAX_JOB_ID`)."""
        return await self._operations.find(job_id)

    async def wait(self, job_id: int, timeout: float | None = None) -> Job:
        """The job once it is succeeded, failed or cancelled, whichever process runs it.

        Raises :class:`TimeoutError` after ``timeout`` seconds (``None``: no limit) and
        :class:`~quart_jobs.errors.JobNotFound` when there is no such job. Woken when this
        process's worker records the outcome or the store announces another process's
        (PostgreSQL: NOTIFY; SQLite: the wake-up sockets, best effort: a lost announcement is
        caught by reading the job again now and then)."""
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must not be negative, not {timeout}")
        return await self._waiters.wait(self._store, job_id, lambda: self.get(job_id), timeout)

    async def list(
        self,
        *,
        state: JobState | str | None = None,
        priority: int | Tier | str | None = None,
        task: str | None = None,
        owner: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
        queue: str | None = None,
    ) -> list[Job]:
        """Jobs, newest first, filtered by each argument given; ``before_id`` pages back."""
        state_ = None if state is None else JobState(state)
        tier = None if priority is None else Tier.parse(priority)
        flt = JobFilter(state_, tier, task, owner, queue, limit, before_id)
        return await self._store.list_jobs(flt)

    async def cancel(self, job_id: int, *, running: bool = True) -> Job:
        """Cancel a queued job, or (``running=True``) ask a running one to stop: it ends
        ``cancelled``. Look at the returned job's state to see what happened."""
        return await self._operations.cancel(job_id, running=running)

    async def retry(self, job_id: int) -> Job:
        """Queue a failed or cancelled job again, with a fresh set of attempts, unless a
        :attr:`retry_guards` refuses (:class:`~quart_jobs.errors.RetryRefused`)."""
        return await self._operations.retry(job_id)

    async def pause(self, queue: str) -> bool:
        """Stop starting ``queue``'s jobs, in every process, until :meth:`resume` (durable:
        it outlives restarts). Running jobs finish; enqueues are still accepted; a queue no
        job has used yet may be paused. ``False`` when it was paused already."""
        return await self._operations.pause(queue)

    async def resume(self, queue: str) -> bool:
        """Start ``queue``'s jobs again (workers are woken as by an enqueue). ``False`` when
        it was not paused."""
        return await self._operations.resume(queue)

    async def paused(self) -> set[str]:
        """The paused queues."""
        return await self._operations.paused()

    async def stats(self) -> Stats:
        """Counts by state and priority, and the oldest queued job per priority; the live
        workers (every process's, from the store's registry), the ready jobs none of them
        serves (:attr:`Stats.unserved`), the paused queues (:attr:`Stats.paused`) and why the
        jobs that are not starting wait (:attr:`Stats.waiting`)."""
        return await self._operations.stats()

    async def serving(self) -> tuple[builtins.list[WorkerRecord], builtins.list[UnservedTask]]:
        """The live workers and the ready jobs that none of them may claim (by queue and task):
        a few index lookups (:func:`~quart_jobs.unserved.read_serving`), what ``/metrics``
        reports."""
        return await self._operations.serving()

    async def find_by_key(self, key: str) -> Job | None:
        """The job enqueued with this ``key`` (``options(key=…)``), or ``None``."""
        return await self._store.get_by_key(key)

    async def purge(
        self, before: float, states: Collection[JobState] = FINISHED_STATES
    ) -> dict[JobState, int]:
        """Delete the jobs in ``states`` (end states only: ``ValueError`` for others) that
        finished before ``before`` (seconds since the epoch); return how many per state.
        Queued and running jobs are never removed (:attr:`retention` calls this)."""
        return await self._store.purge(before, states)

    @property
    def operator(self) -> OperatorStore:
        """Admin sessions, the write probe (a readiness check) and the dashboard's counts, in
        the jobs' store (:class:`~quart_jobs.backends.operator.OperatorStore`)."""
        return self._store.operator

    @property
    def database(self) -> AppDatabase | None:
        """The jobs' SQL database, for the application's own tables and their migrations: a
        :class:`~quart_jobs.SQLiteDatabase` or a :class:`~quart_jobs.PostgresDatabase`;
        ``None`` on ``memory://`` (its :meth:`transaction` still takes SQL)."""
        return self._store.database

    # --- lifecycle ---------------------------------------------------------------------------

    def missing_store(self) -> str | None:
        """What :meth:`open` would have to create because it is not there yet, said for a
        person (``the SQLite database var/jobs.sqlite3``), or ``None`` when the store exists:
        a command that only reads refuses to create a database from a mistyped URL."""
        return self._store.missing()

    @contextlib.asynccontextmanager
    async def store_only(self) -> AsyncIterator[Jobs]:
        """``async with jobs.store_only():`` the store opened alone, closed on exit: no worker,
        no retention, no :attr:`QuartJobs.on_open` hook (for commands that read or purge)."""
        async with self._handle.opened_alone():
            yield self

    async def open(self) -> None:
        """Open the store, creating or upgrading its schema. ``async with jobs:`` calls it."""
        await self._handle.open()

    async def close(self) -> None:
        """Stop this object's workers gracefully, then close the store."""
        await self._local.close()
        self._waiters.unwatch()
        await self._handle.close()

    async def __aenter__(self) -> Jobs:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start_worker(self, **overrides: Any) -> Worker:
        """Start a worker in this process, with :attr:`worker_settings` plus ``overrides``
        (``queues=["emails"]``: claim only from those queues)."""
        return self._start(self._local.settings(self.worker_settings, overrides), self._events.emit)

    def _start(self, settings: WorkerSettings, on_event: EventHook) -> Worker:
        worker = self._local.start(self._store, settings, self.clock, on_event, self.job_context)
        if not settings.burst:
            self.start_retention()
        return worker

    def start_retention(self) -> None:
        """Start deleting finished jobs past :attr:`retention` (at least once a minute) in
        this process, until :meth:`close`; nothing when retention is off. Workers and a
        serving Quart app call it."""
        self._local.start_retention(self.retention, self.purge, self.clock)

    async def stop_worker(self, worker: Worker, timeout: float | None = None) -> None:
        """Stop a worker from :meth:`start_worker` gracefully (see :meth:`Worker.stop`)."""
        await self._local.stop(worker, timeout)

    async def drain(self, timeout: float | None = None) -> Drained:
        """Run, in this process, every job that is ready, and the jobs they enqueue, until no
        job is ready and none runs; return how the attempts ended (:class:`Drained`).

        A burst worker does it (the worker of production: retries, timeouts and hooks behave
        the same). Jobs delayed into the future (including retries waiting for their backoff)
        are not waited for. After ``timeout`` seconds the running jobs are put back in the
        queue and :class:`TimeoutError` is raised."""
        burst = replace(self.worker_settings, burst=True)
        start = functools.partial(self._start, burst)
        return await self._local.drain(start, self._events.emit, timeout)

    @contextlib.asynccontextmanager
    async def run_worker(self, **overrides: Any) -> AsyncIterator[Worker]:
        """``async with jobs.run_worker(concurrency=2) as worker:``; stopped gracefully on exit.

        ``overrides`` are :class:`WorkerSettings` fields. On exit the worker stops claiming,
        gives running jobs ``shutdown_timeout`` seconds, and puts the rest back in the queue.
        """
        worker = self.start_worker(**overrides)
        try:
            yield worker
        finally:
            await self.stop_worker(worker)

    @property
    def workers(self) -> builtins.list[Worker]:
        """The workers running in this process."""
        return list(self._local)
