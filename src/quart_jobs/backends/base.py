"""The one storage contract every backend implements, at the level of queue operations.

Backends record decisions; policy (fair claim order, retry timing) is decided in
:mod:`quart_jobs.fairness` and passed in. Every write a worker makes presents its
:class:`~quart_jobs.models.Lease`; a write with a lease that is no longer current is refused
(fencing), so a worker that lost a job can never overwrite the new owner's result.

Times are seconds since the epoch, passed in by the caller, so tests can drive the clock.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import ConfigurationError, QueueFull
from ..fairness import Weights
from ..models import (
    FINISHED_STATES,
    Dependencies,
    EnqueueResult,
    Job,
    JobEvent,
    JobFilter,
    JobState,
    Lease,
    NewJob,
    Progress,
    Stats,
    Why,
    WorkerRecord,
)
from .database import AppDatabase
from .effects import Effects, merge_held, record_effects_alone
from .operator import OperatorStore

_OUTCOME_EVENTS = {
    JobState.SUCCEEDED: JobEvent.SUCCEEDED,
    JobState.CANCELLED: JobEvent.CANCELLED,
    JobState.QUEUED: JobEvent.REQUEUED,
}


@dataclass(slots=True)
class Outcome:
    """How a worker ends its hold on a job (not frozen: one is built for every job a worker
    runs, and a frozen dataclass's ``__init__`` costs four times as much; nothing changes one
    after it is built: :func:`dataclasses.replace` makes another).

    * ``SUCCEEDED`` with ``result`` (JSON text);
    * ``FAILED`` with ``error``/``traceback``; ``run_at`` set means "queue it again then";
    * ``CANCELLED``;
    * ``QUEUED`` with ``refund=True``: put back untouched (graceful shutdown): the attempt
      it used is not charged.

    ``why`` is stored as the job's :attr:`~quart_jobs.models.Job.why` (a failure's reason;
    ``CANCELLED`` stores :attr:`~quart_jobs.models.Why.CANCELLED` whatever it says).
    """

    lease: Lease
    state: JobState
    result: str | None = None
    error: str | None = None
    traceback: str | None = None
    run_at: float | None = None
    refund: bool = False
    why: Why | None = None
    #: Progress the task reported that was not written yet: written with the outcome.
    progress: Progress | None = None
    #: A success's writes of the application, committed in the transaction that records it.
    effects: Effects | None = None

    @property
    def event(self) -> JobEvent:
        """The :class:`JobEvent` this outcome is (see :data:`~quart_jobs.models.TRANSITIONS`)."""
        if self.state is JobState.FAILED:
            return JobEvent.FAILED if self.run_at is None else JobEvent.RETRIED
        return _OUTCOME_EVENTS[self.state]

    @property
    def stored_why(self) -> Why | None:
        """The ``why`` this outcome stores: a cancel's is :attr:`Why.CANCELLED`, a success's
        and a refund's none."""
        if self.state is JobState.CANCELLED:
            return Why.CANCELLED
        return None if self.state in (JobState.SUCCEEDED, JobState.QUEUED) else self.why

    @property
    def why_text(self) -> str | None:
        """:attr:`stored_why` as the text a SQL row stores."""
        why = self.stored_why
        return None if why is None else why.value

    @property
    def ends_job(self) -> bool:
        """Whether this outcome puts its job in an end state (not a retry, not a refund)."""
        if self.state is JobState.FAILED:
            return self.run_at is None
        return self.state in (JobState.SUCCEEDED, JobState.CANCELLED)


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """Caps on queued jobs that ``enqueue`` checks in the same transaction as its insert.

    ``max_queued`` counts every queued job (including delayed ones and ones waiting for a
    retry); ``max_queued_per_owner`` counts the queued jobs of the new job's owner (jobs without
    an owner count only globally). ``None`` means no cap. A job whose key exists already is a
    replay: it is returned whatever the counts.
    """

    max_queued: int | None = None
    max_queued_per_owner: int | None = None

    def check(self, queued: int, owned: int) -> None:
        """Raise :class:`~quart_jobs.errors.QueueFull` if one more job would pass a cap."""
        if self.max_queued_per_owner is not None and owned >= self.max_queued_per_owner:
            raise QueueFull(
                f"this owner has {owned} queued jobs, the most allowed "
                f"({self.max_queued_per_owner}); try again once some have run",
                scope="owner",
            )
        if self.max_queued is not None and queued >= self.max_queued:
            raise QueueFull(
                f"the queue holds {queued} jobs, the most allowed ({self.max_queued}); "
                "try again later",
                scope="global",
            )


T = TypeVar("T")
#: A statement's parameters: a sequence for positional placeholders (``?``, ``%s``).
Params = Sequence[Any]


class BackendTransaction(abc.ABC):
    """One open transaction of a backend, handed to the function given to
    :meth:`Backend.run_transaction`: the application's statements and its enqueues, committed
    together or not at all. Synchronous: it is used from inside that function only."""

    #: ``sqlite`` or ``postgresql``: the SQL dialect of :meth:`execute`.
    dialect: str = ""
    #: The parameter placeholder of the dialect: ``?`` (SQLite), ``%s`` (PostgreSQL).
    placeholder: str = "?"

    @abc.abstractmethod
    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    @abc.abstractmethod
    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None: ...

    @abc.abstractmethod
    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]: ...

    @abc.abstractmethod
    def enqueue(
        self, jobs: Sequence[NewJob], *, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]:
        """:meth:`Backend.enqueue` inside this transaction (durable once it commits)."""

    @abc.abstractmethod
    def enqueue_after(
        self, jobs: Sequence[NewJob], after: Sequence[int], *, run_always: bool = False
    ) -> list[EnqueueResult]:
        """Enqueue ``jobs``, each to start only once every job of ``after`` (ids) succeeded
        (``run_always``: once each ended, however). Until then they are ``waiting``; a parent
        that fails or is cancelled for good cancels them (and, transitively, their own
        dependants) unless ``run_always``. Raises
        :class:`~quart_jobs.errors.UnknownDependency` for an id that names no job."""

    @abc.abstractmethod
    def get(self, job_id: int) -> Job | None:
        """A job as this transaction sees it."""

    @abc.abstractmethod
    def cancel(self, job_id: int) -> Job | None:
        """Cancel the job if it is queued (other states are unchanged); ``None`` when no
        such job exists."""

    @abc.abstractmethod
    def finish(self, outcome: Outcome) -> bool:
        """Record ``outcome`` in this transaction if its lease is still held (``False``:
        refused, nothing written); its job's end is announced once the transaction commits."""


@dataclass(frozen=True, slots=True)
class ClaimScope:
    """What a claim may take, and how the priority levels share the starts.

    ``tasks``: only jobs of these tasks (a worker passes the tasks it has registered, so a job
    it cannot run stays queued, uncharged); ``None``: any task (tools and tests).
    ``queues``: only from these queues; ``None``: every queue."""

    tasks: tuple[str, ...] | None = None
    queues: tuple[str, ...] | None = None
    weights: Weights = field(default_factory=Weights)


#: Any task, any queue, the default weights.
ANY_SCOPE = ClaimScope()


def queue_names(queues: Iterable[str] | str) -> tuple[str, ...]:
    """Queue names, checked (``"a,b"`` or ``["a", "b"]``): no empty names, no duplicates."""
    items = queues.split(",") if isinstance(queues, str) else list(queues)
    names = tuple(dict.fromkeys(q.strip() for q in items))
    if not names or any(not q or len(q) > 100 for q in names):
        raise ConfigurationError(
            f"queues {queues!r}: give one or more names of 1 to 100 characters, comma-separated"
        )
    return names


@dataclass(frozen=True, slots=True)
class Round:
    """What one worker round (:meth:`Backend.claim_round`) did."""

    #: For each outcome, whether its lease was still held (``False``: the write was refused).
    held: list[bool]
    claimed: list[Job]
    #: After a claim that took fewer jobs than asked for: what :meth:`Backend.next_run_at`
    #: would have answered for the claim's scope after it, read in the same transaction
    #: (``None``: nothing queued). ``None`` after a claim that took all it asked for.
    next_at: float | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The answer to a heartbeat for one lease."""

    job_id: int
    held: bool
    cancel_requested: bool = False


class Backend(abc.ABC):
    """Async storage for jobs. One instance per process, shared by every worker in it."""

    #: ``sqlite``, ``memory``, ``postgresql``.
    scheme: str = ""
    #: Admin sessions, the write probe and the dashboard's counts, in the same database
    #: (:class:`~quart_jobs.backends.operator.OperatorStore`: not queue operations).
    operator: OperatorStore
    #: The application's own tables in the same database; ``None`` when the store keeps no
    #: SQL database (``memory://``).
    database: AppDatabase | None = None

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date. Safe when several processes start at once."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release connections."""

    def missing(self) -> str | None:
        """What :meth:`open` would create because it is not there yet, said for a person (a
        SQLite file), or ``None`` when the store exists."""
        return None

    @abc.abstractmethod
    async def enqueue(
        self, jobs: Sequence[NewJob], now: float, *, limits: QueueLimits | None = None
    ) -> list[EnqueueResult]:
        """Store jobs; return only once they are durable. A job whose key exists already is not
        created: the existing job is returned with ``created=False``.

        With ``limits``, each job to be created is checked against them inside the insert's
        transaction (counts include the jobs created before it in the same call); if one would
        pass a cap, :class:`~quart_jobs.errors.QueueFull` is raised and none of ``jobs`` is
        stored."""

    @abc.abstractmethod
    async def claim(
        self,
        worker: str,
        limit: int,
        now: float,
        lease_seconds: float,
        scope: ClaimScope = ANY_SCOPE,
    ) -> list[Job]:
        """Mark up to ``limit`` ready jobs within ``scope`` running under new leases, in the
        order :mod:`quart_jobs.fairness` decides (fair, weighted, within concurrency limits)."""

    @abc.abstractmethod
    async def heartbeat(
        self,
        leases: Sequence[Lease],
        now: float,
        lease_seconds: float,
        progress: Sequence[tuple[Lease, Progress]] = (),
    ) -> list[Heartbeat]:
        """Extend the leases that are still held; report lost ones and cancel requests.

        ``progress``: the latest progress of some running jobs, written in the same
        transaction, each only where its lease is still held (empty, the common case: no
        statement more)."""

    @abc.abstractmethod
    async def finish(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        """Record outcomes; ``False`` for each whose lease was no longer held (write refused)."""

    async def finish_and_claim(
        self,
        outcomes: Sequence[Outcome],
        worker: str,
        limit: int,
        now: float,
        lease_seconds: float,
        scope: ClaimScope = ANY_SCOPE,
    ) -> tuple[list[bool], list[Job]]:
        """:meth:`claim_round` for a caller that does not sleep on its answer."""
        done = await self.claim_round(outcomes, worker, limit, now, lease_seconds, scope)
        return done.held, done.claimed

    async def claim_round(
        self,
        outcomes: Sequence[Outcome],
        worker: str,
        limit: int,
        now: float,
        lease_seconds: float,
        scope: ClaimScope = ANY_SCOPE,
    ) -> Round:
        """The worker's one call per round: :meth:`finish` the outcomes, :meth:`claim` up to
        ``limit`` jobs, and, when the claim took fewer, when the next job it could take is
        ready (:meth:`next_run_at`): the worker sleeps until then without a read of its own.
        Backends that can do it all in one transaction override this."""
        outcomes, early = await record_effects_alone(self, outcomes, now)
        held = await self.finish(outcomes, now) if outcomes else []
        held = merge_held(early, held)
        claimed = await self.claim(worker, limit, now, lease_seconds, scope) if limit else []
        if limit <= 0 or len(claimed) >= limit:
            return Round(held, claimed)
        return Round(held, claimed, await self.next_run_at(scope))

    @abc.abstractmethod
    async def recover_expired(self, now: float) -> int:
        """Requeue (or fail, when out of attempts) running jobs whose lease expired."""

    @abc.abstractmethod
    async def cancel(self, job_id: int, now: float, *, running: bool = True) -> Job | None:
        """Cancel a queued job, or (``running=True``) ask a running one to stop. Other jobs are
        unchanged. ``None`` when no such job exists."""

    @abc.abstractmethod
    async def retry(self, job_id: int, now: float) -> Job | None:
        """Queue a failed or cancelled job again with a fresh set of attempts. Other states are
        unchanged. ``None`` when no such job exists."""

    @abc.abstractmethod
    async def get(self, job_id: int) -> Job | None: ...

    @abc.abstractmethod
    async def get_by_key(self, key: str) -> Job | None: ...

    async def enqueue_after(
        self,
        jobs: Sequence[NewJob],
        after: Sequence[int],
        now: float,
        *,
        run_always: bool = False,
    ) -> list[EnqueueResult]:
        """:meth:`BackendTransaction.enqueue_after` in a transaction of its own."""
        return await self.run_transaction(
            lambda tx: tx.enqueue_after(jobs, after, run_always=run_always), now
        )

    @abc.abstractmethod
    async def dependencies(self, job_id: int) -> Dependencies:
        """The jobs ``job_id`` depends on, with their results, and the jobs that depend on it
        (empty for a job without either, or an unknown id)."""

    @abc.abstractmethod
    async def list_jobs(self, flt: JobFilter) -> list[Job]:
        """Jobs matching ``flt``, newest first."""

    @abc.abstractmethod
    async def stats(self) -> Stats: ...

    @abc.abstractmethod
    async def ready_tasks(self) -> dict[tuple[str, str], int]:
        """Ready queued jobs counted by (queue, task): a worker compares them with its tasks to
        warn about jobs that nobody serves (an index-only read, no row visited)."""

    @abc.abstractmethod
    async def ready_kinds(self) -> set[tuple[str, int, str]]:
        """The (queue, priority, task) triples that have ready queued jobs: SQL backends skip
        through their index of ready jobs, one seek per triple, whatever the number of jobs
        (``stats`` and ``/metrics`` ask it to tell which jobs nobody serves)."""

    @abc.abstractmethod
    async def ready_count(self, queue: str, priority: int, task: str) -> int:
        """The ready queued jobs of one (queue, priority, task)."""

    @abc.abstractmethod
    async def register_worker(self, worker: WorkerRecord, now: float) -> None:
        """Write or refresh ``worker``'s row in the live-workers registry (one upsert; its
        ``started_at`` stays the first one written), and delete rows that expired long before
        ``now``. The record's times are on the caller's clock, like ``now``."""

    @abc.abstractmethod
    async def remove_worker(self, name: str) -> None:
        """Delete the worker's registry row (a graceful stop); nothing happens for an unknown
        name."""

    @abc.abstractmethod
    async def live_workers(self, now: float) -> list[WorkerRecord]:
        """The registered workers whose row has not expired at ``now``, by name (a read of a
        small table: one row per running worker)."""

    @abc.abstractmethod
    async def next_run_at(self, scope: ClaimScope = ANY_SCOPE) -> float | None:
        """When the next queued job a claim with ``scope`` could take is ready: the earliest
        ``run_at`` among queued jobs not yet ready, or, when some are ready already, a
        ``run_at`` that has passed (``None``: nothing queued). Ready jobs of paused queues and
        of queues outside ``scope.queues`` do not count (a worker would find nothing to claim:
        it sleeps instead); ``scope.tasks`` is not looked at."""

    # --- pausing queues ------------------------------------------------------------------------
    # Queue operations, not operator bookkeeping: a pause changes what every claim and
    # ``next_run_at`` answer, and a resume wakes the workers the way an enqueue does.

    @abc.abstractmethod
    async def pause(self, queue: str, now: float) -> bool:
        """Stop every claim, in every process, from starting jobs of ``queue`` (running jobs
        are left alone; enqueues are still accepted), durably; ``now`` is recorded as the
        pause's start. ``False`` when it was paused already (its start is kept)."""

    @abc.abstractmethod
    async def resume(self, queue: str) -> bool:
        """Let claims take ``queue``'s jobs again, and wake the workers as an enqueue does.
        ``False`` when it was not paused."""

    @abc.abstractmethod
    async def paused(self) -> dict[str, float]:
        """The paused queues and when each was paused (the caller's clock), by name."""

    @abc.abstractmethod
    async def purge(
        self, before: float, states: Collection[JobState] = FINISHED_STATES
    ) -> dict[JobState, int]:
        """Delete jobs in ``states`` (end states only) that finished before ``before``; return
        how many were removed per state (only the states with rows removed are keys). Queued and
        running jobs are never removed."""

    @abc.abstractmethod
    async def run_transaction(self, func: Callable[[BackendTransaction], T], now: float) -> T:
        """Run ``func(tx)`` in one transaction and return its value once committed; if it
        raises, nothing it did is kept (the exception reaches the caller). ``now`` is the
        enqueue time of the jobs it enqueues.

        ``func`` is synchronous and should be short: on SQLite it runs on the writer thread,
        inside a group-commit batch (its own savepoint); on PostgreSQL in a thread, its
        statements sent on one pooled connection in one transaction."""

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the event loop) when another process may have enqueued a job.

        Backends that can tell (PostgreSQL's LISTEN/NOTIFY) override this; the worker also
        polls, so a missed notification only delays a job by the poll interval."""
        return None

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        return None

    def watch_finished(self, callback: Callable[[Collection[int] | None], None]) -> bool:
        """Call ``callback`` (on the event loop) with the ids of jobs that reached an end state,
        whichever process ended them; ``None`` means "some may have: read them again" (after a
        reconnect). Return ``False`` when this backend cannot tell other processes' finishes
        (SQLite): the caller then reads the jobs again now and then."""
        return False

    def unwatch_finished(self, callback: Callable[[Collection[int] | None], None]) -> None:
        return None
