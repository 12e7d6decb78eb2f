"""Periodic tasks: schedules, their moments, and the loop that enqueues each moment once.

    @jobs.periodic(cron="*/5 * * * *")            # every five minutes, in UTC
    async def refresh_rates() -> None: ...

    @jobs.periodic(every=30, name="heartbeat")     # every 30 seconds
    def heartbeat(timestamp: float) -> None: ...   # optional: the scheduled moment (epoch)

Every process that runs a worker keeps every schedule it has registered. Each moment is
enqueued as a job with the key ``periodic:<name>:<moment>``; the store's keys are unique, so
when several processes (on any number of machines) enqueue the same moment, one job is created
and the others get the existing job back. A process that starts enqueues the latest moment
that has passed (if no process did): a schedule missed while nothing ran runs once, not once
per missed moment. While a process runs, every moment that comes is enqueued: a moment whose
enqueue failed (the store refused, a connection was cut) is tried again, that same moment, in
the next round, and so is every moment that came meanwhile (the keys make a retry safe).

Moments of ``every=N`` are the multiples of N seconds since the epoch, so every process agrees
on them whenever it started. Cron moments come from `cronsim`_ in the schedule's time zone;
daylight saving time behaves as cronsim documents it (a moment that falls in a skipped hour
runs at the end of the gap; one in a repeated hour runs once).

.. _cronsim: https://github.com/cuu508/cronsim
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import math
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .builder import EnqueueMany, Enqueuer, enqueue_options
from .errors import BackendUnavailable, TaskRegistrationError
from .models import Tier
from .registry import Registry, Task, TaskFunc, task_options

log = logging.getLogger("quart_jobs.periodic")

#: The scheduler wakes at least this often (seconds), so a wall clock that jumps is noticed.
MAX_SLEEP = 30.0

#: A round within this many seconds of the previous one means this process ran in between:
#: every moment since the last one it enqueued is owed. A longer gap (the process was suspended,
#: or the wall clock jumped) counts as a time when nothing ran: only the latest moment is owed.
RUNNING_GAP = 2 * MAX_SLEEP

#: At most this many moments per schedule are caught up in a round (the latest ones); older
#: ones, owed after a long outage of the store, are logged at WARNING as skipped.
MAX_CATCH_UP = 100

#: How the key of every periodic moment's job begins (see :func:`is_moment_key`).
MOMENT_KEY_PREFIX = "periodic:"


def is_moment_key(key: str | None) -> bool:
    """Whether a job's key is a periodic moment's (``periodic:<name>:<moment>``)."""
    return key is not None and key.startswith(MOMENT_KEY_PREFIX)


#: The keyword argument a periodic function may accept to receive its moment (epoch seconds).
TIMESTAMP_ARGUMENT = "timestamp"


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a periodic task runs: ``cron`` (5 fields, in ``timezone``) or ``every`` seconds."""

    task: Task
    cron: str | None
    every: float | None
    timezone: str
    queue: str
    priority: int | None
    passes_timestamp: bool

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def description(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron} ({self.timezone})"
        assert self.every is not None
        return f"every {self.every:g}s"

    def latest(self, now: float) -> float:
        """The latest moment at or before ``now``."""
        if self.every is not None:
            return math.floor(now / self.every) * self.every
        assert self.cron is not None
        after = dt.datetime.fromtimestamp(math.floor(now) + 1, ZoneInfo(self.timezone))
        return next(CronSim(self.cron, after, reverse=True)).timestamp()

    def previous(self, moment: float) -> float:
        """The last moment strictly before ``moment`` (itself a moment of the schedule)."""
        if self.every is not None:
            return moment - self.every
        assert self.cron is not None
        start = dt.datetime.fromtimestamp(math.floor(moment), ZoneInfo(self.timezone))
        return next(CronSim(self.cron, start, reverse=True)).timestamp()

    def next_after(self, now: float) -> float:
        """The first moment strictly after ``now``."""
        if self.every is not None:
            return (math.floor(now / self.every) + 1) * self.every
        assert self.cron is not None
        start = dt.datetime.fromtimestamp(math.floor(now), ZoneInfo(self.timezone))
        return next(CronSim(self.cron, start)).timestamp()

    def key(self, moment: float) -> str:
        """The job key of ``moment``: one job per moment in the whole store."""
        return f"{MOMENT_KEY_PREFIX}{self.name}:{round(moment)}"

    def as_dict(self, now: float) -> dict[str, Any]:
        """The schedule as JSON (the CLI's ``schedules --json`` and the admin API)."""
        upcoming = self.next_after(now)
        return {
            "name": self.name,
            "cron": self.cron,
            "every": self.every,
            "timezone": self.timezone,
            "queue": self.queue,
            "priority": self.priority,
            "schedule": self.description,
            "next_run_at": upcoming,
            "next_run": dt.datetime.fromtimestamp(upcoming, dt.UTC).isoformat(),
        }


def checked_timing(
    where: str, cron: str | None, every: float | None, timezone: str
) -> tuple[str | None, float | None]:
    """``cron`` (normalized) and ``every`` (a float) after checking them and ``timezone``;
    :class:`TaskRegistrationError` says what is wrong, in ``where``."""
    if (cron is None) == (every is None):
        raise TaskRegistrationError(f"{where}: give exactly one of cron=... or every=...")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise TaskRegistrationError(
            f"{where}: timezone={timezone!r} is not a known time zone (say 'Europe/Paris')"
        ) from None
    if every is not None:
        if isinstance(every, bool) or not isinstance(every, int | float) or not every >= 1:
            raise TaskRegistrationError(
                f"{where}: every={every!r} must be a number of seconds, at least 1"
            )
        if math.isinf(every):
            raise TaskRegistrationError(f"{where}: every={every!r} must be finite")
        return None, float(every)
    assert cron is not None
    text = " ".join(str(cron).split())
    if len(text.split()) != 5:
        raise TaskRegistrationError(
            f"{where}: cron={cron!r} must have 5 fields (minute hour day month weekday)"
        )
    try:
        CronSim(text, dt.datetime.now(zone))
    except CronSimError as exc:
        raise TaskRegistrationError(f"{where}: cron={cron!r} is not valid: {exc}") from None
    return text, None


def check_no_required_arguments(func: TaskFunc) -> None:
    """Refuse a function that needs an argument: a schedule calls it with none (except the
    optional ``timestamp`` keyword)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return
    required = [
        p.name
        for p in signature.parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name != TIMESTAMP_ARGUMENT
    ]
    if required:
        raise TaskRegistrationError(
            f"{getattr(func, '__qualname__', func)!r} needs {', '.join(required)}: a periodic "
            "task is called with no arguments (only an optional `timestamp` keyword). Give them "
            "defaults, or enqueue a task with arguments from the periodic one"
        )


def accepts_timestamp(func: TaskFunc) -> bool:
    """Whether ``func`` takes a ``timestamp`` keyword (or ``**kwargs``)."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        (p.name == TIMESTAMP_ARGUMENT and p.kind is not inspect.Parameter.POSITIONAL_ONLY)
        or p.kind is inspect.Parameter.VAR_KEYWORD
        for p in parameters
    )


EnqueueMoment = Callable[[Schedule, float], Coroutine[Any, Any, bool]]


class Scheduler:
    """Enqueues the moments of ``schedules`` as they come, through ``enqueue_moment`` (which
    returns whether it created the job; an existing key is another process's work).

    :meth:`tick` does one round and is what tests drive with their own clock; :meth:`start`
    runs rounds in a task until :meth:`stop`, sleeping until the next moment. A round that
    fails (the store is unreachable) is logged and tried again with backoff; the loop never
    ends silently.
    """

    def __init__(
        self,
        schedules: Sequence[Schedule],
        enqueue_moment: EnqueueMoment,
        clock: Callable[[], float],
    ) -> None:
        self.schedules = list(schedules)
        self._enqueue_moment = enqueue_moment
        self._clock = clock
        #: The latest moment enqueued (or found enqueued) per schedule, in this process.
        self._done: dict[str, float] = {}
        #: When this process last ran a round (its start and its end), on ``clock``.
        self._seen = -math.inf
        self._task: asyncio.Task[None] | None = None

    async def tick(self, now: float | None = None) -> int:
        """Enqueue every schedule's moments that this process owes at ``now``: the latest one
        at or before ``now``, and, when the previous round was recent (this process ran since),
        every moment after the last one it enqueued. Return how many jobs were created (0 when
        others had done it). A schedule whose enqueue fails keeps its moment owed; the other
        schedules still get their round, and the first error is raised at the end."""
        now = self._clock() if now is None else now
        ran_since = now - self._seen <= RUNNING_GAP
        self._seen = now
        created = 0
        error: Exception | None = None
        try:
            for schedule in self.schedules:
                try:
                    created += await self._enqueue_owed(schedule, now, ran_since)
                except Exception as exc:
                    error = error or exc
        finally:
            self._seen = max(self._seen, self._clock())
        if error is not None:
            raise error
        return created

    async def _enqueue_owed(self, schedule: Schedule, now: float, ran_since: bool) -> int:
        created = 0
        for moment in self._owed(schedule, now, ran_since):
            if await self._enqueue_moment(schedule, moment):
                created += 1
                log.info("periodic %s: enqueued the moment %s", schedule.name, _when(moment))
            self._done[schedule.name] = moment
        return created

    def _owed(self, schedule: Schedule, now: float, ran_since: bool) -> list[float]:
        """The moments to enqueue now, oldest first."""
        latest = schedule.latest(now)
        if not ran_since or schedule.name not in self._done:
            # A first round, or one after a time when nothing ran: the moments before the
            # latest are not owed (a missed schedule runs once), the latest is until enqueued.
            earlier = schedule.previous(latest)
            self._done[schedule.name] = max(self._done.get(schedule.name, -math.inf), earlier)
        done = self._done[schedule.name]
        if latest <= done:
            return []
        owed = [latest]
        moment = schedule.previous(latest)
        while moment > done and len(owed) < MAX_CATCH_UP:
            owed.append(moment)
            moment = schedule.previous(moment)
        if moment > done:
            log.warning(
                "periodic %s: skipped the moments from %s to %s: only the latest %d are caught up",
                schedule.name,
                _when(schedule.next_after(done)),
                _when(moment),
                MAX_CATCH_UP,
            )
        owed.reverse()
        return owed

    def next_due(self, now: float) -> float:
        """When the next moment of any schedule comes."""
        return min(s.next_after(now) for s in self.schedules)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running or not self.schedules:
            return
        self._task = asyncio.create_task(self._run(), name="quart-jobs scheduler")
        self._task.add_done_callback(_log_end)
        log.info("scheduler started: %s", ", ".join(s.name for s in self.schedules))

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self.tick()
                failures = 0
                pause = self.next_due(self._clock()) - self._clock()
            except BackendUnavailable as exc:
                failures += 1
                pause = min(MAX_SLEEP, 0.5 * 2**failures)
                log.error("scheduler: store unavailable (retry in %.1fs): %s", pause, exc)
            except Exception:
                failures += 1
                pause = min(MAX_SLEEP, 0.5 * 2**failures)
                log.exception("scheduler: a round failed (retry in %.1fs)", pause)
            await asyncio.sleep(min(MAX_SLEEP, max(0.0, pause)))


class Schedules:
    """The periodic tasks registered on one :class:`~quart_jobs.Jobs` (``@jobs.periodic``),
    and the :class:`Scheduler` that enqueues their moments through ``enqueue_many``: built
    when first needed, built anew after a registration."""

    def __init__(self, registry: Registry, enqueue_many: EnqueueMany) -> None:
        self._registry = registry
        self._enqueue_many = enqueue_many
        self._by_name: dict[str, Schedule] = {}
        self._scheduler: Scheduler | None = None

    def decorator(
        self,
        cron: str | None,
        every: float | None,
        name: str | None,
        timezone: str,
        queue: str,
        priority: int | Tier | str | None,
    ) -> Callable[[TaskFunc], Task]:
        """What ``@jobs.periodic(...)`` returns: registers the function as a task and its
        schedule; the timing is checked now, the function when it is decorated."""
        where = f"@jobs.periodic({cron or f'every={every}'!r})"
        cron_text, seconds = checked_timing(where, cron, every, timezone)
        tier = None if priority is None else Tier.parse(priority)

        def register(func: TaskFunc) -> Task:
            check_no_required_arguments(func)
            options = task_options(priority=tier, queue=queue)
            task = self._registry.register(func, name=name, options=options)
            self._by_name[task.name] = Schedule(
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

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def listed(self) -> list[Schedule]:
        """The schedules, by name."""
        return [self._by_name[name] for name in sorted(self._by_name)]

    def scheduler(self, clock: Callable[[], float]) -> Scheduler:
        """The scheduler of every schedule registered so far, built on ``clock`` if needed."""
        if self._scheduler is None:
            self._scheduler = Scheduler(self.listed(), self._enqueue_moment, clock)
        return self._scheduler

    async def stop(self) -> None:
        """Stop the scheduler, if one was built."""
        if self._scheduler is not None:
            await self._scheduler.stop()

    async def _enqueue_moment(self, schedule: Schedule, moment: float) -> bool:
        kwargs = {TIMESTAMP_ARGUMENT: moment} if schedule.passes_timestamp else {}
        options = enqueue_options(
            key=schedule.key(moment), priority=schedule.priority, queue=schedule.queue
        )
        result = await Enqueuer(self._enqueue_many, options).enqueue_result(schedule.task, **kwargs)
        return result.created


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the scheduler stopped: %r; periodic jobs are not enqueued", task.exception())


def _when(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
