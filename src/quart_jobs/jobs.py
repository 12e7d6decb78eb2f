"""``Jobs``: the one object an application talks to: register tasks, enqueue, inspect, run workers.

    jobs = Jobs("sqlite:///var/app.sqlite3")

    @jobs.task(max_attempts=3)
    async def send_receipt(order_id: int) -> None: ...

    async with jobs:
        await jobs.enqueue(send_receipt, 42)                    # task arguments only
        await jobs.options(priority=Tier.VIP, delay=5).enqueue(send_receipt, 43)
        async with jobs.run_worker(concurrency=4): ...

Job options (priority, delay, key, …) go through :meth:`Jobs.options`, never through the task's
own keyword arguments, so a task may have a parameter called ``priority`` or ``timeout``.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar, Unpack, overload

from .backends import DEFAULT_DATABASE_URL, Backend, backend_from_url
from .backends.base import BackendTransaction, QueueLimits, queue_names
from .backends.database import AppDatabase
from .backends.operator import OperatorStore
from .builder import (
    DEFAULT_MAX_ARGS_BYTES,
    DEFAULT_MAX_ATTEMPTS,
    Calls,
    EnqueueOptions,
    Enqueuer,
    JobBuilder,
    OptionKeywords,
    enqueue_options,
)
from .errors import ConfigurationError, JobNotFound, RetryRefused
from .maintenance.retention import Retention, parse_retention
from .models import (
    DEFAULT_QUEUE,
    FINISHED_STATES,
    EnqueueResult,
    Job,
    JobEvent,
    JobFilter,
    JobState,
    Stats,
    Tier,
    UnservedTask,
    WorkerRecord,
    job_id_in_range,
)
from .periodic import (
    TIMESTAMP_ARGUMENT,
    Schedule,
    Scheduler,
    accepts_timestamp,
    check_no_required_arguments,
    checked_timing,
)
from .policy import Weights
from .rate import RateLimit
from .registry import Registry, Task, TaskFunc, TaskOptions
from .testing import Drained, burst_drain
from .transaction import Transaction
from .unserved import read_serving
from .waiting import Waiters, wait_until_finished
from .worker import Worker, WorkerSettings

T = TypeVar("T")

log = logging.getLogger("quart_jobs")

#: Events after which a job is in an end state (they wake its waiters).
_ENDING_EVENTS = frozenset({JobEvent.SUCCEEDED, JobEvent.FAILED, JobEvent.CANCELLED})


def _not_found(job_id: int) -> JobNotFound:
    return JobNotFound(f"no job has id {job_id}")


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
        self._url = url
        self._backend_options = backend_options or {}
        self._backend: Backend | None = url if isinstance(url, Backend) else None
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
        self._retention: Retention | None = None
        self._workers: list[Worker] = []
        self._opened = False
        #: Entered around every job this process runs (the Quart extension: an app context).
        self.job_context: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None
        #: Called for every job event (a :class:`JobEvent`: ``ENQUEUED`` by this process,
        #: ``STARTED``, ``SUCCEEDED``, ``FAILED`` out of attempts, ``RETRIED`` with another
        #: attempt scheduled, ``CANCELLED``, ``REQUEUED`` on shutdown), with the run time in
        #: seconds for the events that end an attempt. A hook that raises is logged and ignored.
        self.event_hooks: list[Callable[[JobEvent, Job, float | None], None]] = []
        self._schedules: dict[str, Schedule] = {}
        self._scheduler: Scheduler | None = None
        self._waiters = Waiters()
        self._store_notifies: bool | None = None  # watching the store's finished jobs?
        #: Asked before :meth:`retry` queues a job again: a guard returns ``None`` to allow it,
        #: or the reason it is refused (say, "the order was cancelled"), which
        #: :class:`~quart_jobs.errors.RetryRefused` carries to the admin (409) and the CLI.
        self.retry_guards: list[Callable[[Job], Awaitable[str | None]]] = []

    # --- configuration -----------------------------------------------------------------------

    def _configure(
        self, url: str | Backend, *, backend_options: dict[str, Any] | None = None, **settings: Any
    ) -> None:
        """Change the store or settings before :meth:`open` (the Quart extension does, from
        ``app.config``)."""
        if self._opened:
            raise ConfigurationError("configure() must be called before the jobs store is opened")
        self._url = url
        self._backend = url if isinstance(url, Backend) else None
        if backend_options is not None:
            self._backend_options = backend_options
        for name, value in settings.items():
            if not hasattr(self, name):
                raise ConfigurationError(f"unknown setting {name!r}")
            if name == "retention":
                value = parse_retention(value)
            setattr(self, name, value)

    @property
    def max_attempts(self) -> int:
        """Attempts a job gets when neither its task nor ``options()`` says."""
        return self._builder.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        self._builder.max_attempts = value

    @property
    def default_priority(self) -> int:
        """The priority of a job when neither its task nor ``options()`` says."""
        return self._builder.default_priority

    @default_priority.setter
    def default_priority(self, value: int | Tier) -> None:
        self._builder.default_priority = int(value)

    @property
    def max_args_bytes(self) -> int:
        """The largest JSON encoding of a job's arguments (:class:`PayloadTooLarge` past it)."""
        return self._builder.max_args_bytes

    @max_args_bytes.setter
    def max_args_bytes(self, value: int) -> None:
        self._builder.max_args_bytes = value

    @property
    def queue_limits(self) -> QueueLimits | None:
        """Caps on queued jobs checked at every enqueue (``options(limits=…)`` overrides them)."""
        return self._builder.queue_limits

    @queue_limits.setter
    def queue_limits(self, value: QueueLimits | None) -> None:
        self._builder.queue_limits = value

    @property
    def clock(self) -> Callable[[], float]:
        """Seconds since the epoch: the time of enqueues, delays and leases."""
        return self._builder.clock

    @clock.setter
    def clock(self, value: Callable[[], float]) -> None:
        self._builder.clock = value

    @property
    def _store(self) -> Backend:
        """The store, created from the URL on first use (opened by :meth:`open`)."""
        if self._backend is None:
            assert isinstance(self._url, str)
            self._backend = backend_from_url(self._url, **self._backend_options)
        return self._backend

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
    ) -> Task | Callable[[TaskFunc], Task]:
        """Register a sync or async function as a task: ``@jobs.task`` or ``@jobs.task(...)``.

        A job stores its task's name, and any process that runs the job looks the task up by
        it, so the name must be the same in every process. It is ``name`` when given, otherwise
        ``module.qualname``, where a module that runs as ``__main__`` is named as it would be
        imported: ``python -m pkg.tasks`` and ``python tasks.py`` register ``pkg.tasks.send``
        and ``tasks.send`` (a file inside a package, a directory with an ``__init__.py``, gets
        the package's prefix, as Quart's ``--app`` loader names it), the names a worker
        started with ``--app pkg.tasks:jobs`` or ``--app tasks:jobs`` registers. Without a
        file (``python -c``, a REPL) the module stays ``__main__``; pass ``name=`` there.

        :param name: The name jobs store to find the task; default ``module.qualname``
            (see above). Every process that runs the task must register it under the same name.
        :param max_attempts: Attempts for this task's jobs (default: the ``Jobs`` setting).
        :param timeout: Seconds an attempt may run before it fails with ``TimeoutError``.
        :param priority: This task's default priority (a :class:`Tier`, its name, or an int).
        :param rate_limit: ``"N/PERIOD"`` (``"10/s"``, ``"100/m"``, ``"5/h"``, ``"20/5s"``): at
            most N of this task's jobs start in any window of the period, across every
            process on the store (the key is the task's name); the others wait, queued.

        The function must be defined with ``def`` at module level (another process imports it
        by name); its arguments and its result must be JSON. Sync functions run on worker
        threads (abandoned past their timeout), async ones on the event loop. The returned
        :class:`Task` can still be called directly.
        """
        options = TaskOptions(
            max_attempts=max_attempts,
            timeout=timeout,
            priority=None if priority is None else Tier.parse(priority),
            queue=None if queue is None else queue_names([queue])[0],
            rate_limit=None if rate_limit is None else RateLimit.parse(rate_limit),
        )

        def register(f: TaskFunc) -> Task:
            return self.registry.register(f, name=name, options=options)

        return register(func) if func is not None else register

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
        where = f"@jobs.periodic({cron or f'every={every}'!r})"
        cron_text, seconds = checked_timing(where, cron, every, timezone)
        tier = None if priority is None else Tier.parse(priority)

        def register(func: TaskFunc) -> Task:
            check_no_required_arguments(func)
            task = self.task(name=name, priority=tier, queue=queue)(func)
            self._schedules[task.name] = Schedule(
                task=task,
                cron=cron_text,
                every=seconds,
                timezone=timezone,
                queue=queue,
                priority=tier,
                passes_timestamp=accepts_timestamp(func),
            )
            self._scheduler = None  # rebuilt with every schedule when next needed
            return task

        return register

    @property
    def schedules(self) -> builtins.list[Schedule]:
        """The periodic tasks registered here, by name."""
        return [self._schedules[name] for name in sorted(self._schedules)]

    @property
    def scheduler(self) -> Scheduler:
        """What enqueues the schedules' moments; started with this process's first worker.
        ``await jobs.scheduler.tick()`` runs one round now (tests, with their own clock)."""
        if self._scheduler is None:
            self._scheduler = Scheduler(self.schedules, self._enqueue_moment, self.clock)
        return self._scheduler

    async def _enqueue_moment(self, schedule: Schedule, moment: float) -> bool:
        kwargs = {TIMESTAMP_ARGUMENT: moment} if schedule.passes_timestamp else {}
        enqueuer = self.options(
            key=schedule.key(moment), priority=schedule.priority, queue=schedule.queue
        )
        result = await enqueuer.enqueue_result(schedule.task, **kwargs)
        return result.created

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
        new = self._builder.build_all(calls, options)
        limits = self._builder.limits(options)
        results = await self._store.enqueue(new, self.clock(), limits=limits)
        self._notify_workers()
        if self.event_hooks:
            for result in results:
                if result.created:
                    self._emit(JobEvent.ENQUEUED, result.job, None)
        return results

    async def transaction(self, func: Callable[[Transaction], T]) -> T:
        """Run ``func(tx)`` in one transaction of the jobs' database and return its value once
        committed: the application's statements (``tx.execute``) and its enqueues
        (``tx.enqueue``) are kept together or, if ``func`` raises, not at all. ``func`` is
        synchronous and should be short (no network calls): on SQLite it runs on the writer
        thread, inside a group commit. Workers are woken after the commit."""
        now = self.clock()
        done: list[Transaction] = []

        def run(inner: BackendTransaction) -> T:
            tx = Transaction(self._builder, inner, now)
            value = func(tx)
            done.append(tx)
            return value

        value = await self._store.run_transaction(run, now)
        for tx in done:
            if tx.created:
                self._notify_workers()
            for job in tx.created:
                self._emit(JobEvent.ENQUEUED, job, None)
            for job in tx.cancelled:
                self._emit(JobEvent.CANCELLED, job, None)
        return value

    def _emit(self, name: str, job: Job, elapsed: float | None) -> None:
        event = JobEvent(name)
        if event in _ENDING_EVENTS and self._waiters:
            self._waiters.wake((job.id,))
        for hook in self.event_hooks:
            try:
                hook(event, job, elapsed)
            except BaseException:  # SystemExit too: a hook never stops a worker or the caller
                log.exception("job event hook failed (%s, job %s)", event, job.id)

    def _notify_workers(self) -> None:
        for worker in self._workers:
            worker.notify()

    # --- inspect and control -----------------------------------------------------------------

    async def get(self, job_id: int) -> Job:
        """The job with this id, as stored now; :class:`JobNotFound` if there is none."""
        job = await self.find(job_id)
        if job is None:
            raise _not_found(job_id)
        return job

    async def find(self, job_id: int) -> Job | None:
        """The job with this id, or ``None`` (also for an id no job can have: 0, negative, or
        past :data:`~quart_jobs.models.MAX_JOB_ID`)."""
        if not job_id_in_range(job_id):
            return None
        return await self._store.get(job_id)

    async def wait(self, job_id: int, timeout: float | None = None) -> Job:
        """The job once it is succeeded, failed or cancelled, whichever process runs it.

        Raises :class:`TimeoutError` after ``timeout`` seconds (``None``: no limit) and
        :class:`~quart_jobs.errors.JobNotFound` when there is no such job. Woken when this
        process's worker records the outcome or the store announces it (PostgreSQL); on SQLite
        another process's outcome is seen by reading again after 10 ms, doubling up to 1 s."""
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must not be negative, not {timeout}")
        if self._store_notifies is None:
            self._store_notifies = self._store.watch_finished(self._waiters.wake)
        with self._waiters.watch(job_id) as woken:
            return await wait_until_finished(
                lambda: self.get(job_id), woken, timeout, notified=self._store_notifies
            )

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
        return await self._store.list_jobs(
            JobFilter(
                state=None if state is None else JobState(state),
                priority=None if priority is None else Tier.parse(priority),
                task=task,
                owner=owner,
                queue=queue,
                limit=limit,
                before_id=before_id,
            )
        )

    async def cancel(self, job_id: int, *, running: bool = True) -> Job:
        """Cancel a queued job, or (``running=True``) ask a running one to stop: it ends
        ``cancelled``. Look at the returned job's state to see what happened."""
        if not job_id_in_range(job_id):
            raise _not_found(job_id)
        now = self.clock()
        job = await self._store.cancel(job_id, now, running=running)
        if job is None:
            raise _not_found(job_id)
        if job.state is JobState.CANCELLED and job.finished_at == now:
            self._emit(JobEvent.CANCELLED, job, None)  # cancelled by this call, while queued
        if job.state is JobState.RUNNING and running:
            for worker in self._workers:
                await worker.cancel_local(job_id)
        return job

    async def retry(self, job_id: int) -> Job:
        """Queue a failed or cancelled job again, with a fresh set of attempts, unless a
        :attr:`retry_guards` refuses (:class:`~quart_jobs.errors.RetryRefused`)."""
        if not job_id_in_range(job_id):
            raise _not_found(job_id)
        if self.retry_guards:
            current = await self.get(job_id)
            for guard in self.retry_guards:
                refusal = await guard(current)
                if refusal:
                    raise RetryRefused(refusal)
        job = await self._store.retry(job_id, self.clock())
        if job is None:
            raise _not_found(job_id)
        self._notify_workers()
        return job

    async def pause(self, queue: str) -> bool:
        """Stop starting ``queue``'s jobs, in every process, until :meth:`resume` (durable:
        it outlives restarts). Running jobs finish; enqueues are still accepted; a queue no
        job has used yet may be paused. ``False`` when it was paused already."""
        return await self._store.pause(queue_names([queue])[0], self.clock())

    async def resume(self, queue: str) -> bool:
        """Start ``queue``'s jobs again (workers are woken as by an enqueue). ``False`` when
        it was not paused."""
        resumed = await self._store.resume(queue_names([queue])[0])
        self._notify_workers()
        return resumed

    async def paused(self) -> set[str]:
        """The paused queues."""
        return set(await self._store.paused())

    async def stats(self) -> Stats:
        """Counts by state and priority, and the oldest queued job per priority; the live
        workers (every process's, from the store's registry), the ready jobs none of them
        serves (:attr:`Stats.unserved`), the paused queues (:attr:`Stats.paused`) and why the
        jobs that are not starting wait (:attr:`Stats.waiting`)."""
        stats = await self._store.stats()
        workers, unserved = await self.serving()
        paused = await self._store.paused()
        waiting = await self._store.operator.waiting_jobs(self.clock(), workers)
        return replace(
            stats, workers=tuple(workers), unserved=tuple(unserved), paused=paused, waiting=waiting
        )

    async def serving(self) -> tuple[builtins.list[WorkerRecord], builtins.list[UnservedTask]]:
        """The live workers and the ready jobs that none of them may claim (by queue and task):
        a few index lookups (:func:`~quart_jobs.unserved.read_serving`), what ``/metrics``
        reports."""
        return await read_serving(self._store, self.clock())

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
        await self._store.open()
        try:
            yield self
        finally:
            await self._store.close()

    async def open(self) -> None:
        """Open the store, creating or upgrading its schema. ``async with jobs:`` calls it."""
        if not self._opened:
            await self._store.open()
            self._opened = True

    async def close(self) -> None:
        """Stop this object's workers gracefully, then close the store."""
        for worker in list(self._workers):
            await self.stop_worker(worker)
        if self._store_notifies is not None:
            self._store.unwatch_finished(self._waiters.wake)
            self._store_notifies = None
        if self._retention is not None:
            await self._retention.stop()
            self._retention = None
        if self._opened:
            await self._store.close()
            self._opened = False

    async def __aenter__(self) -> Jobs:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def start_worker(self, **overrides: Any) -> Worker:
        """Start a worker in this process, with :attr:`worker_settings` plus ``overrides``
        (``queues=["emails"]``: claim only from those queues)."""
        if overrides.get("queues") is not None:
            overrides["queues"] = queue_names(overrides["queues"])
        settings = replace(self.worker_settings, **overrides)
        self._warn_unused_queues(settings.queues)
        return self._start(settings, self._emit)

    def _warn_unused_queues(self, queues: Sequence[str] | None) -> None:
        """A worker told to claim from a queue that no registered task uses is most often a
        typo: it waits there for jobs that only ``options(queue=…)`` could send."""
        known = self.registry.queues(DEFAULT_QUEUE)
        unused = [q for q in queues or () if q not in known]
        if unused and known:
            log.warning(
                "a worker claims from queue %s that no registered task uses (the tasks' "
                "queues: %s); only jobs enqueued with options(queue=...) reach it",
                ", ".join(unused),
                ", ".join(sorted(known)),
            )

    def _start(
        self, settings: WorkerSettings, on_event: Callable[[str, Job, float | None], None]
    ) -> Worker:
        worker = Worker(
            self._store,
            self.registry,
            settings,
            clock=self.clock,
            on_event=on_event,
            job_context=self.job_context,
        )
        self._workers.append(worker)
        worker.start()
        if not settings.burst:
            if self._schedules:
                self.scheduler.start()  # keeps the schedules while a worker runs here
            self.start_retention()
        return worker

    def start_retention(self) -> None:
        """Start deleting finished jobs past :attr:`retention` (at least once a minute) in
        this process, until :meth:`close`; nothing when retention is off. Workers and a
        serving Quart app call it."""
        if self.retention is None or (self._retention is not None and self._retention.running):
            return
        self._retention = Retention(self.purge, self.retention, self.clock)
        self._retention.start()

    async def stop_worker(self, worker: Worker, timeout: float | None = None) -> None:
        """Stop a worker from :meth:`start_worker` gracefully (see :meth:`Worker.stop`)."""
        try:
            await worker.stop(timeout)
        finally:
            if worker in self._workers:
                self._workers.remove(worker)
            if self._scheduler is not None and not any(not w.settings.burst for w in self._workers):
                await self._scheduler.stop()

    async def drain(self, timeout: float | None = None) -> Drained:
        """Run, in this process, every job that is ready, and the jobs they enqueue, until no
        job is ready and none runs; return how the attempts ended (:class:`Drained`).

        A burst worker does it (the worker of production: retries, timeouts and hooks behave
        the same). Jobs delayed into the future (including retries waiting for their backoff)
        are not waited for. After ``timeout`` seconds the running jobs are put back in the
        queue and :class:`TimeoutError` is raised."""
        burst = replace(self.worker_settings, burst=True)
        return await burst_drain(
            lambda hook: self._start(burst, hook),
            lambda worker: self.stop_worker(worker, timeout=0),
            self._emit,
            timeout,
        )

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
        return list(self._workers)
