"""Transactional enqueue: the application's own writes and its jobs, committed together.

    def place(tx: Transaction) -> int:
        order_id = tx.fetchone("INSERT INTO orders (item) VALUES (?) RETURNING id", ("A-1",))[0]
        job = tx.enqueue(ship_order, order_id)
        tx.execute("UPDATE orders SET job_id = ? WHERE id = ?", (job.id, order_id))
        return order_id

    order_id = await jobs.transaction(place)

``place`` runs in one transaction of the jobs' own database: when it returns, its rows and
its jobs are committed together; when it raises, neither is kept and the exception reaches
the caller. Workers are woken only after the commit. See ``docs/transactions.md``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar, Unpack

from .backends.base import Backend, BackendTransaction, Params
from .builder import Calls, EnqueueOptions, JobBuilder, OptionKeywords, enqueue_options
from .errors import UnknownDependency
from .models import EnqueueResult, Job, JobState, NewJob, job_id_in_range
from .registry import Task, TaskFunc
from .tracing import HOOKS, Producing
from .workflows import Group, Step

T = TypeVar("T")


async def run_transaction(
    store: Backend, builder: JobBuilder, func: Callable[[Transaction], T], now: float
) -> tuple[T, list[Transaction]]:
    """Run ``func(tx)`` in one transaction of ``store``; return its value once committed, and
    the :class:`Transaction` of each run of ``func`` that returned (their jobs, for the
    wake-ups and events after the commit)."""
    done: list[Transaction] = []
    traced = HOOKS.enqueue is not None
    # A store may run ``func`` on its own thread: it runs in the caller's context, so the
    # jobs' producer spans have the caller's span (a request's) as their parent.
    caller = contextvars.copy_context() if traced else None

    def run(inner: BackendTransaction) -> T:
        tx = Transaction(builder, inner, now)
        done.append(tx)
        value = func(tx) if caller is None else caller.run(func, tx)
        tx.returned = True
        return value

    try:
        value = await store.run_transaction(run, now)
    except BaseException as exc:
        for tx in done:
            tx.end_producing(exc)
        raise
    done = [tx for tx in done if tx.returned]
    for tx in done:
        tx.end_producing(None)
    return value, done


class Transaction:
    """What the function given to :meth:`Jobs.transaction` receives. Synchronous: call its
    methods from that function only (not after it returned, not from another thread).

    SQL is the backend's own dialect (:attr:`dialect`), with its placeholder
    (:attr:`placeholder`: ``?`` on SQLite, ``%s`` on PostgreSQL). On PostgreSQL a failed
    statement aborts the transaction: let the exception leave the function."""

    def __init__(self, builder: JobBuilder, inner: BackendTransaction, now: float) -> None:
        self._builder = builder
        self._inner = inner
        self._now = now
        #: The jobs created in this transaction (for the wake-ups after commit).
        self.created: list[Job] = []
        #: The jobs this transaction cancelled (their ``cancelled`` events after commit).
        self.cancelled: list[Job] = []
        #: Whether the function returned (its writes are the ones committed).
        self.returned = False
        #: Under tracing: each traced enqueue's producer side and what it enqueued, ended
        #: once the commit is known.
        self._producing: list[tuple[Producing, list[EnqueueResult]]] = []

    def end_producing(self, error: BaseException | None) -> None:
        """End the producer sides of this transaction's enqueues: committed (``error`` is
        ``None``) or not."""
        for producing, stored in self._producing:
            producing.end(stored if error is None else None, error)
        self._producing.clear()

    @property
    def dialect(self) -> str:
        """The SQL of :meth:`execute`: ``sqlite`` (on SQLite, and on ``memory://``, whose
        application tables are an in-memory SQLite database) or ``postgresql``."""
        return self._inner.dialect

    @property
    def placeholder(self) -> str:
        """The parameter placeholder of :attr:`dialect`: ``?`` (SQLite), ``%s`` (PostgreSQL)."""
        return self._inner.placeholder

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement of the application; return how many rows it changed."""
        return self._inner.execute(sql, params)

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        return self._inner.fetchone(sql, params)

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return self._inner.fetchall(sql, params)

    def enqueue(self, target: Task | TaskFunc | str, /, *args: Any, **kwargs: Any) -> Job:
        """Enqueue ``target(*args, **kwargs)`` in this transaction; the job (and its id) is
        known at once, and it exists only if the transaction commits."""
        return self.enqueue_many([(target, args, kwargs)])[0].job

    def options(self, **options: Unpack[OptionKeywords]) -> TransactionEnqueuer:
        """The keywords of :meth:`Jobs.options`: ``tx.options(priority="vip").enqueue(f, x)``."""
        return TransactionEnqueuer(self, enqueue_options(**options))

    def enqueue_many(
        self, calls: Calls, options: EnqueueOptions | None = None
    ) -> list[EnqueueResult]:
        """Enqueue several calls in this transaction (:meth:`Jobs.enqueue_many`'s arguments)."""
        new = self._builder.build_all(calls, options)
        after = options is not None and options.after is not None
        producing = None if HOOKS.enqueue is None else HOOKS.enqueue(new, after)
        if producing is not None:
            new = producing.jobs  # each carries its producer span's context
        try:
            results = self._insert(new, options)
        except BaseException as exc:
            if producing is not None:
                producing.end(None, exc)
            raise
        if producing is not None:
            self._producing.append((producing, results))
        self.created.extend(result.job for result in results if result.created)
        return results

    def _insert(self, new: list[NewJob], options: EnqueueOptions | None) -> list[EnqueueResult]:
        parents = None if options is None else options.parent_ids()
        if parents is not None:
            assert options is not None
            if not all(job_id_in_range(i) for i in parents):
                bad = next(i for i in parents if not job_id_in_range(i))
                raise UnknownDependency(f"job {bad} does not exist; nothing was enqueued")
            return self._inner.enqueue_after(new, parents, run_always=options.run_always)
        return self._inner.enqueue(new, limits=self._builder.limits(options))

    def chain(self, *steps: Step) -> list[Job]:
        """Enqueue ``steps`` in this transaction, each to start once the one before succeeded
        (a step's own ``after`` is kept too); the jobs, in order."""
        if not steps:
            raise ValueError("chain() needs at least one step")
        created: list[Job] = []
        for step in steps:
            extra = [created[-1]] if created else []
            created.append(self._enqueue_step(step, extra))
        return created

    def group(self, members: Sequence[Step], *, then: Step) -> Group:
        """Enqueue ``members`` and a callback ``then`` that runs once after every member
        ended, whatever their outcome (the callback reads the counts with
        ``await current_job().parent_counts()``), in this transaction."""
        if not members:
            raise ValueError("group() needs at least one member")
        jobs = [self._enqueue_step(member, []) for member in members]
        callback = self._enqueue_step(then, jobs, run_always=True)
        return Group(jobs, callback)

    def _enqueue_step(self, step: Step, after: list[Job], *, run_always: bool = False) -> Job:
        options = step.options
        if after or run_always:
            parents = [*after, *(options.after or ())]
            options = replace(
                options, after=tuple(parents), run_always=run_always or options.run_always
            )
        (result,) = self.enqueue_many([(step.target, step.args, step.kwargs)], options)
        return result.job

    def get_job(self, job_id: int) -> Job | None:
        """A job as this transaction sees it (``None`` if there is none)."""
        return self._inner.get(job_id) if job_id_in_range(job_id) else None

    def cancel_job(self, job_id: int) -> Job | None:
        """Cancel the job if it is still queued; look at the returned job's state to see
        whether it was (a running or finished job is unchanged). ``None`` if there is none."""
        job = self._inner.cancel(job_id) if job_id_in_range(job_id) else None
        if job is not None and job.state is JobState.CANCELLED and job.finished_at == self._now:
            self.cancelled.append(job)
        return job


class TransactionEnqueuer:
    """:meth:`Transaction.options` bound to a set of options."""

    def __init__(self, tx: Transaction, options: EnqueueOptions) -> None:
        self._tx = tx
        self._options = options

    def enqueue(self, target: Task | TaskFunc | str, /, *args: Any, **kwargs: Any) -> Job:
        return self.enqueue_result(target, *args, **kwargs).job

    def enqueue_result(
        self, target: Task | TaskFunc | str, /, *args: Any, **kwargs: Any
    ) -> EnqueueResult:
        """Like :meth:`enqueue`, also telling whether a job was created (``False``: same key)."""
        (result,) = self._tx.enqueue_many([(target, args, kwargs)], self._options)
        return result
