"""One job's execution: the task called with its arguments, its timeout and the application's
context, and whatever happens turned into the job's outcome.

Async tasks run on the event loop; sync tasks on threads the worker can abandon (``runner.py``).
Whatever a task raises (``SystemExit``, ``KeyboardInterrupt``, its own ``CancelledError``, any
``BaseException``) is that job's failure, recorded with its traceback; the worker runs on. Only
the worker itself stops a job, for one of three reasons (:class:`StopReason`): a shutdown
(put back in the queue, attempt refunded), a cancel request (recorded as cancelled) or a lost
lease (another worker owns the job now: nothing is written).

Outcomes are not written here: they wait in :attr:`Execution.outcomes` for the claim loop,
which records them together with its next claim. A success carries the writes the task asked
to commit with it (``current_job().succeed_with``) as its :class:`~.backends.effects.Effects`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .backends.base import Backend, BackendTransaction, Outcome
from .backends.effects import Effects
from .backends.running import running_job
from .builder import JobBuilder
from .current import set_current_job
from .errors import TaskNotRegistered
from .events import EventHook
from .job_log import in_trace, log_outcome, log_started
from .models import Job, JobEvent, JobState, Lease
from .progress import Current, ProgressBook
from .registry import Registry, TaskOptions
from .retries import Retry, RetryPolicy, after_failure
from .runner import SyncThreads, call_task, describe, result_json
from .tracing import HOOKS, Attempt
from .transaction import Transaction

log = logging.getLogger("quart_jobs.worker")


@dataclass(slots=True)
class Finished:
    """A job's outcome, waiting to be recorded by the claim loop (one per job: not frozen, for
    the cost of a frozen dataclass's ``__init__``; the claim loop puts in the failure a store
    recorded instead of a success whose effects raised)."""

    job: Job
    outcome: Outcome
    elapsed: float
    #: The attempt's tracing side, when tracing is on (its ids go into the outcome's log line).
    trace: Attempt | None = None


class StopReason(enum.Enum):
    """Why the worker stopped a running job."""

    SHUTDOWN = "shutdown"  # put back in the queue, attempt refunded
    CANCEL = "cancel"  # cancelled on request: recorded as cancelled
    LOST = "lost"  # lease lost: another worker owns the job now; write nothing


class Execution:
    """The jobs one worker runs, one asyncio task each (see the module).

    ``on_change`` is called when a job ends (an outcome to record, a slot free): it wakes the
    claim loop. ``on_event`` is the worker's job event hook.
    """

    def __init__(
        self,
        registry: Registry,
        retry: RetryPolicy,
        worker: str,
        *,
        clock: Callable[[], float],
        on_change: Callable[[], None],
        on_event: EventHook | None = None,
        job_context: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None,
        store: Backend | None = None,
        builder: JobBuilder | None = None,
    ) -> None:
        self.registry = registry
        self._store = store
        #: Builds the jobs a success's effects enqueue (the ``Jobs``' own, with its defaults).
        self._builder = builder or JobBuilder(registry, clock=clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry = retry
        self._worker = worker
        self._clock = clock
        self._on_change = on_change
        self._on_event = on_event
        self._job_context = job_context
        #: The jobs running now, by id: their asyncio task and lease.
        self.running: dict[int, tuple[asyncio.Task[object], Lease]] = {}
        #: Outcomes of finished jobs, recorded by the claim loop together with its next claim.
        self.outcomes: list[Finished] = []
        self.threads = SyncThreads("quart-jobs-sync")
        #: Progress the running tasks reported and the store does not have yet.
        self.progress = ProgressBook()
        self._stop_reasons: dict[int, StopReason] = {}
        #: The tracing side of the attempts running now (only under tracing).
        self._traces: dict[int, Attempt] = {}

    def start(self, job: Job) -> asyncio.Task[object]:
        """Start running a job the claim loop just claimed."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        lease = Lease(job.id, job.lease_token or "")
        trace = None if HOOKS.attempt is None else HOOKS.attempt(job)
        if trace is None:  # the attempt is the task's own coroutine: no wrapper to await
            run = self._attempt(job, lease, None)
        else:
            self._traces[job.id] = trace
            run = self._traced(job, lease, trace)
        task = asyncio.create_task(run, name=f"quart-jobs job {job.id}")
        self.running[job.id] = (task, lease)
        task.add_done_callback(lambda _: self._done(job.id))
        log_started(job, self._worker, trace)
        self.emit(JobEvent.STARTED, job, None)
        return task

    def stop(self, job_id: int, reason: StopReason) -> bool:
        """Stop a running job (``False``: it does not run here); ``reason`` decides its outcome."""
        entry = self.running.get(job_id)
        if entry is None:
            return False
        self._stop_reasons[job_id] = reason
        entry[0].cancel()
        return True

    def stopping(self, job_id: int) -> bool:
        """Whether the worker already stopped this job (its outcome is decided)."""
        return job_id in self._stop_reasons

    def leases(self) -> list[Lease]:
        return [lease for _, lease in self.running.values()]

    def tasks(self) -> list[asyncio.Task[object]]:
        return [task for task, _ in self.running.values()]

    def recorded(self, finished: Finished, held: bool) -> None:
        """Log and announce an outcome the store took (or refused: the lease was lost)."""
        job, outcome, elapsed = finished.job, finished.outcome, finished.elapsed
        if not held:
            with in_trace(finished.trace):
                log.warning(
                    "job %s: lease lost before the outcome (%s) was written; write refused",
                    job.id,
                    outcome.state.value,
                    extra={"job_id": job.id},
                )
            return
        event = log_outcome(job, outcome, elapsed, self._worker, finished.trace)
        self.emit(event, job, elapsed)

    def emit(self, event: JobEvent, job: Job, elapsed: float | None) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event, job, elapsed)
            except BaseException:  # SystemExit too: logged, and the worker goes on
                log.exception("job event hook failed")

    def _done(self, job_id: int) -> None:
        self.running.pop(job_id, None)
        if self.progress.reports:  # what a task abandoned on its thread reports after it
            self.progress.take(job_id)
        if self._stop_reasons:
            self._stop_reasons.pop(job_id, None)
        if self._traces:
            self._traces.pop(job_id, None)
        self._on_change()

    async def _traced(self, job: Job, lease: Lease, trace: Attempt) -> None:
        outcome = None
        try:
            with trace.running():
                outcome = await self._attempt(job, lease, trace)
        finally:
            trace.end(outcome)

    async def _attempt(self, job: Job, lease: Lease, trace: Attempt | None) -> Outcome | None:
        """Run one attempt and leave its outcome for the claim loop; return it."""
        started = time.monotonic()
        outcome: Outcome | None
        try:
            outcome = await self._call(job, lease, trace)
        except asyncio.CancelledError:
            reason = self._stop_reasons.get(job.id)
            if reason is None:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            outcome = self._stopped_outcome(job, lease, reason)
        reported = self.progress.take(job.id) if self.progress.reports else None
        if outcome is None:
            return None
        if reported is not None:
            outcome = replace(outcome, progress=reported)
        self.outcomes.append(Finished(job, outcome, time.monotonic() - started, trace))
        self._on_change()
        return outcome

    async def _call(self, job: Job, lease: Lease, trace: Attempt | None) -> Outcome:
        """Run the job's task; whatever it raises is its failure. Only the worker's own
        cancellation (shutdown, cancel request, lost lease) leaves as ``CancelledError``."""
        # this task's own context; the loop, for a sync task's reads on its thread
        current = Current(job, self.progress, self._store, self._loop)
        set_current_job(current)
        running_job.set(True)  # its writes are processing: they go ahead of enqueues
        deadline: asyncio.Timeout | None = None
        try:
            task = self.registry.get(job.task)
            timeout = job.timeout if job.timeout is not None else task.options.timeout
            if timeout is None and self._job_context is None:
                # the common case: no timer and no context manager per job
                value = await call_task(task, job.args, dict(job.kwargs), self.threads)
            else:
                deadline = asyncio.timeout(timeout)
                async with (self._job_context or contextlib.nullcontext)(), deadline:
                    value = await call_task(task, job.args, dict(job.kwargs), self.threads)
            outcome = Outcome(lease, JobState.SUCCEEDED, result=result_json(value))
            if current.effects:
                outcome.effects = self._effects(job, lease, current.effects, trace)
            return outcome
        except TimeoutError as exc:
            if deadline is not None and deadline.expired():
                error = f"TimeoutError: job exceeded its timeout ({timeout:g}s)"
                return self._failure(job, lease, exc, error, "", trace)
            return self._failure(job, lease, exc, describe(exc), traceback.format_exc(), trace)
        except BaseException as exc:
            if self._cancelled_by_worker(job.id):
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise asyncio.CancelledError from exc  # the stop reason decides the outcome
            error = exc.describe() if isinstance(exc, Retry) else describe(exc)
            return self._failure(job, lease, exc, error, traceback.format_exc(), trace)

    def _effects(
        self,
        job: Job,
        lease: Lease,
        funcs: list[Callable[[Transaction], Any]],
        trace: Attempt | None,
    ) -> Effects:
        """What the store runs in the transaction recording the success: ``funcs``, in the
        task's context; if one raises, the failure the attempt then is."""
        context = contextvars.copy_context()
        builder, clock = self._builder, self._clock

        def run(inner: BackendTransaction) -> None:
            tx = Transaction(builder, inner, clock())
            try:
                for func in funcs:
                    context.run(func, tx)
            except BaseException as exc:
                tx.end_producing(exc)
                raise
            tx.end_producing(None)

        def failed(exc: BaseException) -> Outcome:
            tb = "".join(traceback.format_exception(exc))
            return self._failure(job, lease, exc, describe(exc), tb, trace)

        return Effects(run, failed)

    def _cancelled_by_worker(self, job_id: int) -> bool:
        """Whether this job's asyncio task was asked to stop (not: the task raised
        ``CancelledError`` itself)."""
        current = asyncio.current_task()
        return job_id in self._stop_reasons or (current is not None and current.cancelling() > 0)

    def _failure(
        self,
        job: Job,
        lease: Lease,
        exc: BaseException,
        error: str,
        tb: str,
        trace: Attempt | None = None,
    ) -> Outcome:
        """The outcome of an attempt that raised ``exc``: whether and when it runs again is
        decided by :func:`~.retries.after_failure` with the task's retry options."""
        if trace is not None:
            trace.failed(exc, error)
        try:
            options = self.registry.get(job.task).options
        except TaskNotRegistered:
            options = TaskOptions()
        decision = after_failure(
            exc,
            job.attempts,
            job.max_attempts,
            self._clock(),
            retry_on=options.retry_on,
            backoff=options.backoff,
            default=self._retry,
        )
        if decision.warning is not None:
            log.warning(
                "job %s: task %s: %s; the worker's backoff applies instead",
                job.id,
                job.task,
                decision.warning,
                extra={"job_id": job.id},
            )
        return Outcome(
            lease,
            JobState.FAILED,
            error=error,
            traceback=tb or None,
            run_at=decision.run_at,
            why=decision.why,
        )

    def _stopped_outcome(self, job: Job, lease: Lease, reason: StopReason) -> Outcome | None:
        if reason is StopReason.SHUTDOWN:
            return Outcome(lease, JobState.QUEUED, refund=True)
        if reason is StopReason.CANCEL:
            return Outcome(lease, JobState.CANCELLED, error="cancelled while running")
        log.warning(
            "job %s: lease lost; another worker may run it, not recording a result",
            job.id,
            extra={"job_id": job.id},
        )
        return None
