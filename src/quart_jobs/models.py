"""The records quart-jobs stores and returns: job states, priority tiers, jobs and statistics."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .rate import RateLimit


class JobState(enum.StrEnum):
    """Where a job is in its life. ``queued`` includes jobs waiting for their ``run_at``.

    ``queued`` → ``running`` → ``succeeded``; a failed attempt goes back to ``queued`` (later,
    with backoff) until ``max_attempts``, then ``failed``. ``cancelled`` from ``queued``, or from
    ``running`` on request. :meth:`Jobs.retry` queues a ``failed`` or ``cancelled`` job again.
    A job enqueued ``after`` others is ``waiting`` until they end, then ``queued`` (or
    ``cancelled``, when one of them failed or was cancelled).
    """

    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """``succeeded``, ``failed`` or ``cancelled``: the job will not run again by itself."""
        return self in FINISHED_STATES


FINISHED_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class JobEvent(enum.StrEnum):
    """What happens to a job. Event hooks (:attr:`Jobs.event_hooks`) get the first seven;
    :data:`TRANSITIONS` says where each event but ``ENQUEUED`` leads. A ``str`` enum:
    ``event == "succeeded"`` holds for ``JobEvent.SUCCEEDED``.

    Given to hooks, with the run time for the events that end an attempt:
    ``ENQUEUED`` (by this process), ``STARTED`` (a worker claimed it), ``SUCCEEDED``,
    ``FAILED`` (out of attempts), ``RETRIED`` (an attempt failed, another is scheduled),
    ``CANCELLED``, ``REQUEUED`` (put back uncharged, on shutdown). Only in the store:
    ``LEASE_EXPIRED`` and ``LEASE_EXPIRED_LAST`` (the worker stopped answering; the job is
    queued again, or fails on its last attempt) and ``RETRIED_BY_OPERATOR`` (``jobs.retry``)."""

    ENQUEUED = "enqueued"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the last attempt failed
    RETRIED = "retried"  # a failed attempt with attempts left: queued, with backoff
    CANCELLED = "cancelled"  # an operator's cancel of a queued job; a running job ends cancelled
    REQUEUED = "requeued"  # the worker hands the job back (shutdown, refund)
    LEASE_EXPIRED = "lease_expired"  # the worker stopped answering; attempts left
    LEASE_EXPIRED_LAST = "lease_expired_last"  # the same, on its last attempt
    RETRIED_BY_OPERATOR = "retried_by_operator"  # an operator queues a finished job again
    DEPENDENCIES_MET = "dependencies_met"  # the last job it waited on ended as it needed
    DEPENDENCY_FAILED = "dependency_failed"  # a job it waited on failed or was cancelled


#: Every allowed state change: ``(state, event) -> new state``. An event absent for a state
#: changes nothing (cancelling a finished job, retrying a queued one). The memory backend
#: applies this table; the contract suite drives every entry on every backend. One rule sits
#: beside it: a running job whose cancel was requested ends ``CANCELLED`` (not ``QUEUED``) on
#: ``RETRIED`` and ``REQUEUED``: the cancel reached the store after the attempt ended.
TRANSITIONS: dict[tuple[JobState, JobEvent], JobState] = {
    (JobState.QUEUED, JobEvent.STARTED): JobState.RUNNING,
    (JobState.QUEUED, JobEvent.CANCELLED): JobState.CANCELLED,
    (JobState.RUNNING, JobEvent.SUCCEEDED): JobState.SUCCEEDED,
    (JobState.RUNNING, JobEvent.FAILED): JobState.FAILED,
    (JobState.RUNNING, JobEvent.RETRIED): JobState.QUEUED,
    (JobState.RUNNING, JobEvent.REQUEUED): JobState.QUEUED,
    (JobState.RUNNING, JobEvent.CANCELLED): JobState.CANCELLED,
    (JobState.RUNNING, JobEvent.LEASE_EXPIRED): JobState.QUEUED,
    (JobState.RUNNING, JobEvent.LEASE_EXPIRED_LAST): JobState.FAILED,
    (JobState.FAILED, JobEvent.RETRIED_BY_OPERATOR): JobState.QUEUED,
    (JobState.CANCELLED, JobEvent.RETRIED_BY_OPERATOR): JobState.QUEUED,
    (JobState.WAITING, JobEvent.DEPENDENCIES_MET): JobState.QUEUED,
    (JobState.WAITING, JobEvent.DEPENDENCY_FAILED): JobState.CANCELLED,
    (JobState.WAITING, JobEvent.CANCELLED): JobState.CANCELLED,
}


def transition(state: JobState, event: JobEvent) -> JobState | None:
    """The state ``event`` moves a job in ``state`` to, or ``None`` if it does not apply."""
    return TRANSITIONS.get((state, event))


class Why(enum.StrEnum):
    """Why a job's latest attempt ended the way it did (:attr:`Job.why`); ``None`` while a job
    has not failed, been cancelled or lost its worker. A ``str`` enum, stored by its value.

    A failed attempt queued again: ``BACKOFF`` (the task's or the worker's backoff) or
    ``RETRY_REQUESTED`` (the task raised :class:`~quart_jobs.Retry`). A job that ended
    ``failed``: ``GAVE_UP`` (no attempts left), ``NOT_RETRYABLE`` (the exception is not in the
    task's ``retry_on``) or ``FAILED_BY_TASK`` (the task raised :class:`~quart_jobs.Fail`).
    ``LEASE_EXPIRED``: the worker stopped answering (queued again, or failed on its last
    attempt). ``CANCELLED``: cancelled, queued or running. ``DEPENDENCY``: cancelled because
    a job it depended on failed or was cancelled."""

    BACKOFF = "backoff"
    RETRY_REQUESTED = "retry_requested"
    GAVE_UP = "gave_up"
    NOT_RETRYABLE = "not_retryable"
    FAILED_BY_TASK = "failed_by_task"
    LEASE_EXPIRED = "lease_expired"
    CANCELLED = "cancelled"
    DEPENDENCY = "dependency"


class Tier(enum.IntEnum):
    """Named priorities. Lower numbers start first; any integer is a valid priority.

    Wherever a priority is accepted, the names ``"vip"`` and ``"regular"`` work too.
    """

    VIP = 0
    REGULAR = 10

    @classmethod
    def name_of(cls, priority: int) -> str:
        """The tier's name for a priority (``vip``, ``regular``), or ``p<N>`` for an unnamed one."""
        try:
            return cls(priority).name.lower()
        except ValueError:
            return f"p{priority}"

    @classmethod
    def parse(cls, value: str | int) -> int:
        """A priority from a tier name (``vip``) or an integer."""
        if isinstance(value, int):
            return value
        try:
            return int(cls[value.upper()])
        except KeyError:
            try:
                return int(value)
            except ValueError:
                names = ", ".join(t.name.lower() for t in cls)
                raise ValueError(
                    f"unknown tier {value!r}: use one of {names} or an integer"
                ) from None


#: The largest job id any backend can hold (a signed 64-bit integer): larger ids name no job.
MAX_JOB_ID = 2**63 - 1


def job_id_in_range(job_id: int) -> bool:
    """Whether a job could have this id (1 to :data:`MAX_JOB_ID`); a store is never asked for
    another (SQLite cannot even bind an integer past 64 bits)."""
    return 0 < job_id <= MAX_JOB_ID


#: The queue of a job whose task and options name none.
DEFAULT_QUEUE = "default"


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to be enqueued, with its arguments already checked to be JSON."""

    task: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    priority: int = int(Tier.REGULAR)
    run_at: float | None = None
    key: str | None = None
    owner: str | None = None
    max_attempts: int = 5
    timeout: float | None = None
    queue: str = DEFAULT_QUEUE
    #: At most ``concurrency_limit`` jobs with this key run at once.
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    #: At most ``rate_limit.n`` jobs with this key start in any ``rate_limit.period`` seconds.
    rate_key: str | None = None
    rate_limit: RateLimit | None = None
    #: ``args`` and ``kwargs`` as JSON text, when the caller encoded them already.
    encoded: tuple[str, str] | None = None
    #: The enqueue's trace context (W3C ``traceparent``/``tracestate`` as a JSON object),
    #: set by a tracing instrumentation (:mod:`quart_jobs.tracing`); ``None`` when untraced.
    trace_context: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A stored job, as a snapshot: reading it again may show a newer state.

    Times are seconds since the epoch (UTC), from the :class:`Jobs` clock.

    :ivar id: The job's id, unique in its store, increasing in enqueue order.
    :ivar task: The registered name of the task it runs (``module.function`` by default).
    :ivar args: The task's positional arguments, as decoded from JSON.
    :ivar kwargs: The task's keyword arguments, as decoded from JSON.
    :ivar priority: Lower starts first: ``Tier.VIP`` (0), ``Tier.REGULAR`` (10) or any integer.
    :ivar state: Where the job is: :class:`JobState`.
    :ivar attempts: Attempts started so far (the running attempt included); an attempt cut short
        by a graceful shutdown is not counted.
    :ivar max_attempts: Attempts allowed before the job is ``failed`` for good.
    :ivar enqueued_at: When it was enqueued.
    :ivar run_at: When it may start: the enqueue time, later for a delayed job or a retry.
    :ivar owner: Who it belongs to (``options(owner=...)``), for listing and fairness.
    :ivar key: Its idempotency key (``options(key=...)``): one job per key in the store.
    :ivar timeout: Seconds an attempt may run before it fails with ``TimeoutError``.
    :ivar started_at: When its latest attempt started.
    :ivar finished_at: When it reached ``succeeded``, ``failed`` or ``cancelled``.
    :ivar worker: The name of the worker running it, or that ran it last (``host:pid:tag``).
    :ivar lease_token: The running attempt's lease (internal: fences the worker's writes).
    :ivar lease_expires_at: When the lease lapses unless the worker's heartbeat renews it; then
        another worker runs the job again.
    :ivar cancel_requested: Someone asked the running job to stop (:meth:`Jobs.cancel`).
    :ivar result: What the task returned, decoded from JSON (``None`` until it succeeded).
    :ivar error: ``ExceptionType: message`` of the latest failed attempt.
    :ivar traceback: The traceback of the latest failed attempt.
    :ivar rate_key: Its rate key (``options(rate_key=...)``, or the task's name for a task
        with a ``rate_limit``): at most ``rate_limit`` jobs with the key start per period.
    :ivar rate_limit: The :class:`~quart_jobs.rate.RateLimit` it was enqueued with.
    :ivar why: Why the latest attempt ended as it did (:class:`Why`), ``None`` if it has not
        failed nor been cancelled; :func:`outcome_text` says it in words.
    :ivar progress: How far its latest attempt got, 0 to 1, as the task last reported it
        (``current_job().progress``), or ``None`` when it reported nothing. Written with the
        worker's next heartbeat (within about a second) and with the outcome; a new attempt
        starts at ``None``; an ended job keeps the last value reported.
    :ivar progress_message: The message reported with :attr:`progress`, if any.
    :ivar trace_context: The trace context of its enqueue (W3C ``traceparent`` and
        ``tracestate`` as a JSON object) when it was enqueued under tracing, else ``None``:
        its attempts' spans continue that trace (:mod:`quart_jobs.otel`).
    """

    id: int
    task: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    priority: int
    state: JobState
    attempts: int
    max_attempts: int
    enqueued_at: float
    run_at: float
    owner: str | None = None
    key: str | None = None
    timeout: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    lease_token: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    queue: str = "default"
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    rate_key: str | None = None
    rate_limit: RateLimit | None = None
    why: Why | None = None
    progress: float | None = None
    progress_message: str | None = None
    trace_context: str | None = None

    @property
    def tier(self) -> str:
        """The priority's tier name: ``vip``, ``regular``, or ``p<N>`` for another integer."""
        return Tier.name_of(self.priority)


@dataclass(frozen=True, slots=True)
class JobLink:
    """A job at the other end of a dependency: its id, task and state (``None`` for both when
    retention deleted it), and, for a parent, its result."""

    id: int
    task: str | None
    state: JobState | None
    result: Any = None


@dataclass(frozen=True, slots=True)
class Dependencies:
    """The jobs a job depends on (``parents``, in the order given at enqueue) and the jobs that
    depend on it (``dependants``, oldest first, at most :data:`DEPENDANTS_SHOWN`)."""

    parents: tuple[JobLink, ...] = ()
    dependants: tuple[JobLink, ...] = ()

    def counts(self) -> dict[str, int]:
        """The parents by state: ``succeeded``, ``failed``, ``cancelled`` and ``unfinished``
        (what a group's callback is told, and what ``quart-jobs show`` prints)."""
        out = {"succeeded": 0, "failed": 0, "cancelled": 0, "unfinished": 0}
        for link in self.parents:
            name = link.state.value if link.state is not None and link.state.finished else None
            out[name or "unfinished"] += 1
        return out


#: The dependants :class:`Dependencies` lists at most.
DEPENDANTS_SHOWN = 1000


@dataclass(frozen=True, slots=True)
class Lease:
    """Proof that a worker holds a running job; every worker write must present it."""

    job_id: int
    token: str


#: The longest progress message kept; a longer one is cut to this many characters.
PROGRESS_MESSAGE_MAX = 200


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a running job got, as its task reported it: ``fraction`` from 0 to 1 and a
    short message (cut at :data:`PROGRESS_MESSAGE_MAX` characters)."""

    fraction: float
    message: str | None = None

    @classmethod
    def of(cls, fraction: float, message: str | None = None) -> Progress:
        """Checked: ``ValueError`` for a fraction that is not a number from 0 to 1, or a message
        that is not a string."""
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise ValueError(f"progress must be a number from 0 to 1, not {fraction!r}")
        if not 0.0 <= fraction <= 1.0:  # NaN fails this too
            raise ValueError(f"progress must be from 0 to 1, not {fraction!r}")
        if message is not None and not isinstance(message, str):
            raise ValueError(f"a progress message must be a string, not {type(message).__name__}")
        return cls(float(fraction), None if message is None else message[:PROGRESS_MESSAGE_MAX])


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    """The stored job, and whether this call created it (``False``: the key already existed)."""

    job: Job
    created: bool


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A running worker as the store's live-workers registry holds it: written when the worker
    starts, refreshed with its heartbeats, removed when it stops; a worker killed without a
    stop counts as gone once ``expires_at`` passed.

    ``queues`` ``None``: every queue. Times are seconds since the epoch."""

    name: str
    host: str
    pid: int
    tasks: tuple[str, ...]
    queues: tuple[str, ...] | None
    concurrency: int
    started_at: float
    seen_at: float
    expires_at: float

    def serves(self, queue: str, task: str) -> bool:
        """Whether this worker may claim jobs of ``task`` in ``queue``."""
        return task in self.tasks and (self.queues is None or queue in self.queues)


@dataclass(frozen=True, slots=True)
class UnservedTask:
    """Ready jobs of one (queue, task) that no live worker may claim: they stay queued."""

    queue: str
    task: str
    count: int
    #: Some live worker has the task registered, but none of those claims from this queue.
    other_queues: bool = False

    def describe(self) -> str:
        """One line for people: what waits, and why."""
        why = (
            "the running workers that have that task registered do not claim from that queue"
            if self.other_queues
            else "no running worker has that task registered"
        )
        jobs = "job" if self.count == 1 else "jobs"
        return f"{self.count} ready {jobs} of task {self.task!r} in queue {self.queue!r}: {why}"


class WaitReason(enum.StrEnum):
    """Why a job that has not ended is not starting, in the order the reasons are tried: a job
    is counted under the first that holds it (:class:`Waiting`)."""

    DEPENDENCY = "dependency"  # it waits for other jobs to end
    NOT_DUE = "not_due"  # its run_at is in the future (delayed, or a retry's backoff)
    PAUSED = "paused"  # its queue is paused
    UNSERVED = "unserved"  # no live worker may claim its task in its queue
    RATE_LIMIT = "rate_limit"  # its rate key's window is full
    CONCURRENCY = "concurrency"  # its concurrency key has its limit of jobs running


@dataclass(frozen=True, slots=True)
class Waiting:
    """Jobs that are not starting, by queue and the first :class:`WaitReason` that holds them;
    each job is counted once. Ready jobs that simply wait for a free slot are not counted.

    Every count comes from a capped read: a count in :attr:`at_least` reached the cap, and the
    true number is that or more."""

    counts: Mapping[tuple[str, WaitReason], int] = field(default_factory=dict)
    at_least: frozenset[tuple[str, WaitReason]] = frozenset()

    def by_queue(self) -> dict[str, dict[WaitReason, int]]:
        """``{queue: {reason: count}}``, queues sorted, reasons in their order of precedence."""
        found: dict[str, dict[WaitReason, int]] = {}
        for reason in WaitReason:
            for (queue, r), n in sorted(self.counts.items()):
                if r is reason and n > 0:
                    found.setdefault(queue, {})[reason] = n
        return dict(sorted(found.items()))

    def describe(self, queue: str, reason: WaitReason) -> str:
        """A count as people read it: ``12``, or ``10000+`` for a count that reached the cap."""
        n = self.counts.get((queue, reason), 0)
        return f"{n}+" if (queue, reason) in self.at_least else str(n)

    def summary(self) -> dict[str, dict[str, dict[str, Any]]]:
        """JSON-able: ``{queue: {reason: {"count": n, "at_least": bool}}}`` (reasons that hold
        no job are left out)."""
        return {
            queue: {
                reason.value: {"count": n, "at_least": (queue, reason) in self.at_least}
                for reason, n in reasons.items()
            }
            for queue, reasons in self.by_queue().items()
        }


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts by state and priority, and the enqueue time of the oldest queued job per priority."""

    counts: Mapping[tuple[JobState, int], int]
    oldest_queued: Mapping[int, float]
    #: Counts by queue and state.
    queues: Mapping[tuple[str, JobState], int] = field(default_factory=dict)
    #: The live workers (filled by :meth:`Jobs.stats`; backends leave it empty).
    workers: tuple[WorkerRecord, ...] = ()
    #: Ready jobs that no live worker serves, by queue and task (filled by :meth:`Jobs.stats`).
    unserved: tuple[UnservedTask, ...] = ()
    #: The paused queues and when each was paused (filled by :meth:`Jobs.stats`); what waits
    #: in one is in :attr:`queues`.
    paused: Mapping[str, float] = field(default_factory=dict)
    #: Jobs that are not starting, by queue and why (filled by :meth:`Jobs.stats`).
    waiting: Waiting = field(default_factory=Waiting)

    def count(self, state: JobState | None = None, priority: int | None = None) -> int:
        """How many jobs are in ``state`` with ``priority`` (``None``: any)."""
        return sum(
            n
            for (s, p), n in self.counts.items()
            if (state is None or s == state) and (priority is None or p == priority)
        )


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What ``list_jobs`` selects; ``None`` fields select everything."""

    state: JobState | None = None
    priority: int | None = None
    task: str | None = None
    owner: str | None = None
    queue: str | None = None
    limit: int = 50
    before_id: int | None = None
