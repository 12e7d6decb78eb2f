"""Progress a running task reports, kept in memory and written coalesced.

``current_job().progress(0.4, "resized 4 of 10")`` only records the latest value in the
worker's :class:`ProgressBook` (one dict assignment: safe from a sync task's thread, cheap in a
tight loop). The heartbeat loop writes what changed with its next beat, and at most once a
second in between (:data:`PROGRESS_EVERY`); a job's outcome carries what is still unwritten. So
a thousand calls cost at most one write a second per worker, each fenced by the job's lease,
and a worker that dies loses at most the last second of progress. Jobs that report nothing
cost nothing: no statement is added when the book is empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .backends.base import Backend
from .errors import JobsError
from .models import Job, JobState, Lease, Progress

if TYPE_CHECKING:
    from .transaction import Transaction

T = TypeVar("T")

#: Seconds between the heartbeat loop's writes of progress that changed (between its beats).
PROGRESS_EVERY = 1.0


class ProgressBook:
    """The latest unwritten progress of each running job of one worker, by job id."""

    def __init__(self) -> None:
        #: Job id to its latest unwritten progress; read directly by the worker's hot path,
        #: which skips :meth:`take` when it is empty (most tasks never report).
        self.reports: dict[int, Progress] = {}

    def report(self, job_id: int, progress: Progress) -> None:
        self.reports[job_id] = progress  # atomic: tasks' threads call it too

    def pending(self) -> bool:
        return bool(self.reports)

    def take(self, job_id: int) -> Progress | None:
        """The job's unwritten progress, now the caller's to write."""
        return self.reports.pop(job_id, None)

    def take_all(self, leases: Sequence[Lease]) -> list[tuple[Lease, Progress]]:
        """The unwritten progress of the jobs of ``leases`` (the running ones), now the
        caller's to write; progress of jobs that no longer run is dropped."""
        by_id = {lease.job_id: lease for lease in leases}
        taken = []
        for job_id in list(self.reports):
            progress = self.reports.pop(job_id, None)
            if progress is not None and job_id in by_id:
                taken.append((by_id[job_id], progress))
        return taken

    def put_back(self, reports: Sequence[tuple[Lease, Progress]]) -> None:
        """Reports whose write failed: written next time, unless newer ones came meanwhile."""
        for lease, progress in reports:
            self.reports.setdefault(lease.job_id, progress)


#: The slot descriptor that holds :attr:`Job.progress`.
_PROGRESS_SLOT: Any = Job.__dict__["progress"]


class _ProgressMethod:
    """``RunningJob.progress``: the reporting method on a running job, where a stored
    :class:`Job` has its ``progress`` value (the dataclass's ``__init__`` stores that value
    in :class:`Job`'s slot, through :meth:`__set__`)."""

    def __get__(self, obj: RunningJob | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._report

    def __set__(self, obj: RunningJob, value: float | None) -> None:
        _PROGRESS_SLOT.__set__(obj, value)


class RunningJob(Job):
    """The job a task runs (:func:`~quart_jobs.current_job`): every field of :class:`Job` as
    it was claimed, :meth:`progress` to say how far the task got, and reads about the jobs it
    depended on (:meth:`parent_results`, :meth:`parent_counts`)."""

    __slots__ = ("_effects", "_loop", "_reporter", "_store")
    _reporter: Callable[[Progress], None]
    _store: Backend | None
    _loop: asyncio.AbstractEventLoop | None
    _effects: list[Callable[[Transaction], Any]] | None

    progress = _ProgressMethod()

    @classmethod
    def of(
        cls,
        job: Job,
        reporter: Callable[[Progress], None],
        store: Backend | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        effects: list[Callable[[Transaction], Any]] | None = None,
    ) -> RunningJob:
        fields = {name: getattr(job, name) for name in Job.__dataclass_fields__}
        running = cls(**fields)
        object.__setattr__(running, "_reporter", reporter)
        object.__setattr__(running, "_store", store)
        object.__setattr__(running, "_loop", loop)
        object.__setattr__(running, "_effects", effects)
        return running

    def succeed_with(self, func: Callable[[Transaction], Any]) -> None:
        """Commit ``func(tx)`` in the transaction that records this attempt's success: the
        application's writes (``tx.execute``, ``tx.enqueue``: :class:`~quart_jobs.Transaction`)
        and the job's success are kept together or not at all, so they are written exactly
        once however often the job runs, and the task needs no transaction of its own.

        ``func`` runs after the task returned, synchronously, on the store's thread, in the
        task's context (``current_job()`` works there), and only if the job's lease is still
        held (a worker that lost the job writes nothing). If it raises, nothing of it is kept
        and the attempt fails with that exception (retried like any failure). It is dropped
        when the task raises. Call it several times: each runs, in order."""
        if self._effects is None:
            raise JobsError("this job was not claimed by a worker: nothing records its success")
        self._effects.append(func)

    async def parent_results(self) -> list[Any]:
        """The results of the jobs this one was enqueued ``after``, in the order given there
        (``None`` for one that did not succeed; ``[]`` for a job without dependencies)."""
        dependencies = await self._claimed_from().dependencies(self.id)
        return [p.result if p.state is JobState.SUCCEEDED else None for p in dependencies.parents]

    async def parent_counts(self) -> dict[str, int]:
        """How many of the jobs this one depended on ``succeeded``, ``failed`` or were
        ``cancelled`` (and ``unfinished``: 0 once it runs, unless it was retried by hand)."""
        return (await self._claimed_from().dependencies(self.id)).counts()

    def parent_results_sync(self) -> list[Any]:
        """:meth:`parent_results` for a sync task, on its thread: it waits for the read (made
        on the worker's event loop). An async task awaits :meth:`parent_results` instead."""
        return self._on_worker_loop(self.parent_results())

    def parent_counts_sync(self) -> dict[str, int]:
        """:meth:`parent_counts` for a sync task, on its thread (see
        :meth:`parent_results_sync`)."""
        return self._on_worker_loop(self.parent_counts())

    def _on_worker_loop(self, read: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if loop is None or here is not None:
            read.close()
            if loop is None:
                raise JobsError("this job was not claimed by a worker: it has no store to read")
            raise JobsError(
                "an async task awaits current_job().parent_results() / parent_counts(); the "
                "_sync variants are for sync tasks (they block their thread)"
            )
        return asyncio.run_coroutine_threadsafe(read, loop).result()

    def _claimed_from(self) -> Backend:
        if self._store is None:
            raise JobsError("this job was not claimed by a worker: it has no store to read")
        return self._store

    def _report(self, fraction: float, message: str | None = None) -> None:
        """Report how far the task got: ``fraction`` from 0 to 1 (``ValueError`` otherwise)
        and a short message (cut at 200 characters). Kept in memory and written with the
        worker's next heartbeat (within about a second) and with the job's outcome."""
        self._reporter(Progress.of(fraction, message))


class Current:
    """A running task's job and its worker's book, in the task's context; the
    :class:`RunningJob` is built when the task first asks for it (most never do)."""

    __slots__ = ("_running", "book", "effects", "job", "loop", "store")

    def __init__(
        self,
        job: Job,
        book: ProgressBook,
        store: Backend | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.job = job
        self.book = book
        self.store = store
        #: The worker's event loop (a sync task's reads of its parents are made there).
        self.loop = loop
        #: What the task asked to commit with its success (:meth:`RunningJob.succeed_with`).
        self.effects: list[Callable[[Transaction], Any]] = []
        self._running: RunningJob | None = None

    def running(self) -> RunningJob:
        if self._running is None:
            job_id, book = self.job.id, self.book
            report: Callable[[Progress], None] = lambda p: book.report(job_id, p)  # noqa: E731
            self._running = RunningJob.of(self.job, report, self.store, self.loop, self.effects)
        return self._running
