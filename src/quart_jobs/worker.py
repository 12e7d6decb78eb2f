"""The worker: claims jobs when it has a free slot, runs them, records how they ended.

Async tasks run on the event loop; sync tasks on threads it can abandon (``runner.py``). A
worker claims only as many jobs as it has free slots, so a job it holds is always one it is
running: nothing is prefetched past a VIP job that arrives later.

Whatever a task raises (``SystemExit``, ``KeyboardInterrupt``, its own ``CancelledError``, any
``BaseException``) is that job's failure, recorded with its traceback; the worker runs on.

Graceful stop: stop claiming, give running jobs ``timeout`` seconds, then cancel the rest and
put them back in the queue without charging the attempt. The worker's own loops (the pump that
records and claims, the heartbeat) are supervised: one that fails is logged with its traceback
and the worker stops claiming and drains the same way.

A worker keeps a row in the store's live-workers registry (its tasks and queues), written before
its first claim, refreshed every half lease with the heartbeats and deleted when it stops, so
``stats`` can tell which ready jobs no running worker serves (:mod:`.unserved`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import functools
import logging
import os
import secrets
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import policy
from .backends.base import Backend, ClaimScope, Outcome, queue_names
from .backends.running import running_job
from .errors import BackendUnavailable, JobsError
from .job_log import log_outcome, log_started
from .models import Job, JobEvent, JobState, Lease, WorkerRecord
from .registry import Registry
from .runner import SyncThreads, call_task, describe, result_json
from .unserved import CHECK_EVERY, EXPIRY_LEASES, UnservedWatch

log = logging.getLogger("quart_jobs.worker")

#: A store that cannot be reached: logged, waited out with backoff, never a crash of a loop.
_STORE_DOWN = (BackendUnavailable, OSError)

_current_job: contextvars.ContextVar[Job] = contextvars.ContextVar("quart_jobs_current_job")


def current_job() -> Job:
    """The job being run, as claimed (id, attempt number, arguments); inside a task only."""
    try:
        return _current_job.get()
    except LookupError:
        raise JobsError("current_job() is only available inside a running task") from None


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a worker runs: pass them as ``Jobs(worker_settings=...)`` or as overrides to
    :meth:`Jobs.run_worker` (``jobs.run_worker(concurrency=8)``).

    :ivar concurrency: Jobs run at once (async ones on the loop, sync ones in as many threads).
    :ivar lease_seconds: How long a claimed job stays this worker's without a heartbeat; a
        worker that died loses its jobs to another after this long.
    :ivar heartbeat_interval: Seconds between heartbeats (default: a third of the lease).
    :ivar poll_interval: Seconds between looks for jobs that another process enqueued (jobs
        enqueued by this process wake the worker at once).
    :ivar weights: The priority levels' shares when several have jobs waiting
        (:class:`~quart_jobs.policy.Weights`; default VIP 9 starts per regular start).
    :ivar queues: The queues this worker claims from (``None``: every queue).
    :ivar shutdown_timeout: Seconds that running jobs get to finish when the worker stops;
        then they are cancelled and queued again without charging the attempt.
    :ivar retry: The backoff between attempts of a failing job.
    """

    concurrency: int = 4
    lease_seconds: float = 30.0
    heartbeat_interval: float | None = None  # default: a third of the lease
    poll_interval: float = 0.5
    shutdown_timeout: float = 20.0
    retry: policy.RetryPolicy = field(default_factory=policy.RetryPolicy)
    weights: policy.Weights = field(default_factory=policy.Weights)
    queues: tuple[str, ...] | None = None
    #: Burst mode (``jobs.drain``): claim until no job is ready and none runs, then stop.
    burst: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", policy.Weights.of(self.weights))
        if self.queues is not None:
            object.__setattr__(self, "queues", queue_names(self.queues))
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, not {self.lease_seconds}")

    @property
    def beat_every(self) -> float:
        """Seconds between heartbeats."""
        return self.heartbeat_interval or self.lease_seconds / 3


@dataclass(frozen=True, slots=True)
class _Finished:
    job: Job
    outcome: Outcome
    elapsed: float


class _Stop(enum.Enum):
    SHUTDOWN = "shutdown"  # put back in the queue, attempt refunded
    CANCEL = "cancel"  # cancelled on request: recorded as cancelled
    LOST = "lost"  # lease lost: another worker owns the job now; write nothing


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class Worker:
    """Runs jobs from one backend. Create it, ``start()`` it, ``await stop()`` it.

    Applications do not build one themselves: :meth:`Jobs.run_worker` (or
    :meth:`Jobs.start_worker`, or ``quart-jobs worker``, or the Quart extension's embedded
    worker) creates it with the right backend, tasks and settings.
    """

    def __init__(
        self,
        backend: Backend,
        registry: Registry,
        settings: WorkerSettings | None = None,
        *,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[str, Job, float | None], None] | None = None,
        job_context: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None,
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.settings = settings or WorkerSettings()
        self.name = name or worker_name()
        self._clock = clock
        self._on_event = on_event
        self._job_context = job_context
        self._running: dict[int, tuple[asyncio.Task[None], Lease]] = {}
        # Outcomes of finished jobs, recorded by the pump together with its next claim.
        self._outcomes: list[_Finished] = []
        self._stop_reasons: dict[int, _Stop] = {}
        self._deadline: float | None = None  # loop time at which a graceful stop puts jobs back
        self._put_back = 0
        self._wake = asyncio.Event()
        self._unserved = UnservedWatch(self.registry.names(), self.settings.queues)
        self._started_at: float | None = None  # first written to the live-workers registry
        self._registered_at = float("-inf")
        self._stopping = False
        self._main: asyncio.Task[None] | None = None
        self._beats: asyncio.Task[None] | None = None
        self._stopper: asyncio.Task[None] | None = None
        self._threads = SyncThreads("quart-jobs-sync")
        #: Why the worker stopped on its own (one of its loops failed), or ``None``.
        self.failure: BaseException | None = None
        #: Set once the worker has stopped (on request, or after a failure of its own).
        self.stopped = asyncio.Event()

    # --- public ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Started, claiming, and not stopping (nor stopped)."""
        return self._main is not None and self._stopper is None and not self._main.done()

    def start(self) -> None:
        """Start claiming and running jobs (on the running event loop)."""
        if self._main is not None:
            raise JobsError("this worker was started already; create a new one")
        self._main = self._supervised(self._pump(), "pump")
        self._beats = self._supervised(self._beat_loop(), "heartbeat")
        self.backend.subscribe(self.notify)
        log.info("worker %s started (concurrency %d)", self.name, self.settings.concurrency)

    def notify(self) -> None:
        """Wake the worker: a job may be ready (called on enqueue in this process)."""
        self._wake.set()

    async def wait(self) -> None:
        """Until the worker stops claiming by itself (burst mode: nothing ready and nothing
        running any more) or through :meth:`stop`."""
        if self._main is not None:
            await asyncio.shield(self._main)

    def stop_claiming(self) -> None:
        """Claim no more jobs; running ones go on (the first step of a graceful stop)."""
        self._stopping = True
        self._wake.set()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; wait up to ``timeout`` for running jobs; requeue the rest. Stopping
        twice (or after the worker stopped on its own) waits for the same stop."""
        if self._stopper is None:
            self._stopper = asyncio.create_task(
                self._shut_down(timeout), name=f"quart-jobs stop {self.name}"
            )
        await self._stopper

    async def _shut_down(self, timeout: float | None) -> None:
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        self.stop_claiming()
        self.backend.unsubscribe(self.notify)
        if self._main is not None and self._main.done():
            # The pump failed: a new one (claiming nothing) records the outcomes of the drain.
            self._main = self._supervised(self._pump(), "pump")
        # Every running job, and any a round still in flight launches after this point, is
        # cancelled at the deadline (put back, attempt refunded) if it has not ended by then.
        self._deadline = asyncio.get_running_loop().time() + timeout
        for job_id, (task, _) in list(self._running.items()):
            self._arm(job_id, task)
        if self._running:
            log.info(
                "worker %s waiting up to %.1fs for %d jobs", self.name, timeout, len(self._running)
            )
        if self._main is not None:
            self._wake.set()
            # The pump ends once no job runs and records every outcome; a failure is logged.
            await asyncio.wait([self._main])
        if self._running:  # the pump gave up (store down) or failed: the jobs still end in time
            await asyncio.wait([t for t, _ in self._running.values()])
        if self._put_back:
            log.warning("worker %s putting %d unfinished jobs back", self.name, self._put_back)
        if self._outcomes:
            log.error(
                "worker %s: %d outcomes not recorded; their leases expire and the jobs run again",
                self.name,
                len(self._outcomes),
            )
        if self._beats is not None:
            self._beats.cancel()
            await asyncio.wait([self._beats])
        if self._started_at is not None:
            try:
                await self.backend.remove_worker(self.name)
            except _STORE_DOWN as exc:  # its row expires by itself
                log.warning("worker %s: cannot leave the workers registry: %s", self.name, exc)
        self._threads.close()
        if self._threads.abandoned:
            log.warning(
                "worker %s: %d sync task threads still run code the worker gave up on",
                self.name,
                self._threads.abandoned,
            )
        self.stopped.set()
        log.info("worker %s stopped", self.name)

    def _supervised(self, loop: Any, what: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(loop, name=f"quart-jobs {what} {self.name}")
        task.add_done_callback(functools.partial(self._loop_ended, what))
        return task

    def _loop_ended(self, what: str, task: asyncio.Task[None]) -> None:
        """A loop of the worker ended: fine when stopping; otherwise log it and drain."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None and self._stopping:
            return
        if exc is None and what == "pump" and self.settings.burst:
            log.info("worker %s: no job ready and none running; its burst is done", self.name)
        else:
            log.error(
                "worker %s: its %s loop %s; it stops claiming and drains its running jobs",
                self.name,
                what,
                "failed" if exc is not None else "ended unexpectedly",
                exc_info=exc,
            )
            if self.failure is None:
                self.failure = exc or JobsError(f"the worker's {what} loop ended unexpectedly")
        if self._stopper is None:
            self._stopper = asyncio.create_task(
                self._shut_down(None), name=f"quart-jobs stop {self.name}"
            )

    async def run_until(self, event: asyncio.Event) -> None:
        """Return when ``event`` is set (a signal, say) or when the worker stopped on its own
        (then :attr:`failure` says why)."""
        waits = [asyncio.create_task(e.wait()) for e in (event, self.stopped)]
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for waiting in pending:
            waiting.cancel()

    async def cancel_local(self, job_id: int) -> bool:
        """Cancel a job this worker runs (it is recorded as cancelled)."""
        entry = self._running.get(job_id)
        if entry is None:
            return False
        self._stop_reasons[job_id] = _Stop.CANCEL
        entry[0].cancel()
        return True

    # --- claiming ----------------------------------------------------------------------------

    def scope(self) -> ClaimScope:
        """What this worker may claim: its registered tasks, from its queues."""
        return ClaimScope(tuple(self.registry.names()), self.settings.queues, self.settings.weights)

    async def _pump(self) -> None:
        """Record finished jobs' outcomes and claim new jobs, both in one store operation:
        one transaction (one commit) per round, however many jobs ended or start."""
        failures = 0
        look_first = False  # woken by the poll timer: read before taking the write lock
        if not self.settings.burst and not self._stopping:
            await self._join_registry()  # listed as live before its first claim
        while True:
            self._wake.clear()  # whatever happens from here on wakes the next sleep
            look_first = look_first and not self.settings.burst
            outcomes, self._outcomes = self._outcomes, []
            free = 0 if self._stopping else self.settings.concurrency - len(self._running)
            if free > 0 and look_first and not outcomes and not await self._ready_or_down():
                free = 0
            if not outcomes and free <= 0:
                if self._stopping and not self._running:
                    return
                busy = self._stopping or len(self._running) >= self.settings.concurrency
                wait = self.settings.poll_interval if busy else await self._idle_wait()
                look_first = not await self._sleep(wait)  # a finishing job wakes us
                continue
            try:
                held, claimed = await self.backend.finish_and_claim(
                    [f.outcome for f in outcomes],
                    self.name,
                    free,
                    self._clock(),
                    self.settings.lease_seconds,
                    self.scope(),
                )
                failures = 0
            except _STORE_DOWN as exc:
                failures += 1
                if self._stopping and failures > 5:
                    log.error(
                        "worker %s: %d outcomes not recorded (%s); their leases expire and "
                        "the jobs run again",
                        self.name,
                        len(outcomes),
                        exc,
                    )
                    return
                self._outcomes[:0] = outcomes
                pause = min(5.0, 0.1 * 2**failures)
                log.warning(
                    "worker %s: store unavailable (retry in %.1fs): %s", self.name, pause, exc
                )
                await self._sleep(pause)
                continue
            except BaseException:
                self._outcomes[:0] = outcomes  # not written: the drain after this failure tries
                raise
            for finished, was_held in zip(outcomes, held, strict=True):
                self._recorded(finished, was_held)
            for job in claimed:
                self._launch(job)
            if self.settings.burst and not claimed and not self._running and not self._outcomes:
                return  # burst mode: nothing was ready, nothing runs, nothing to record
            if free > 0 and len(claimed) == free:
                look_first = False  # full: there may be more, go again
                continue
            if free > 0:  # fewer ready than free slots: wait for news or the next poll
                look_first = not await self._sleep(await self._idle_wait())

    async def _ready_or_down(self) -> bool:
        """Whether to claim after an idle poll: a job is ready (or the store cannot tell)."""
        try:
            return await self._work_ready()
        except _STORE_DOWN:
            return True

    async def _work_ready(self) -> bool:
        """Whether a queued job is ready now: a cheap read, so idle workers of several processes
        do not take turns holding the database's write lock to find nothing."""
        next_at = await self.backend.next_run_at()
        return next_at is not None and next_at <= self._clock()

    async def _idle_wait(self) -> float:
        wait = self.settings.poll_interval
        try:
            next_at = await self.backend.next_run_at()
        except _STORE_DOWN:
            return wait
        if next_at is not None:
            wait = max(0.0, min(wait, next_at - self._clock()))
        return wait

    async def _sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; ``True`` when woken early (an enqueue here, a free slot)."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    def _launch(self, job: Job) -> None:
        lease = Lease(job.id, job.lease_token or "")
        task = asyncio.create_task(self._run_job(job, lease), name=f"quart-jobs job {job.id}")
        self._running[job.id] = (task, lease)
        task.add_done_callback(lambda _: self._done(job.id))
        if self._deadline is not None:  # claimed by a round that was in flight at the stop
            self._arm(job.id, task)
        log_started(job, self.name)
        self._emit(JobEvent.STARTED, job, None)

    def _arm(self, job_id: int, task: asyncio.Task[None]) -> None:
        """Cancel job ``job_id``'s ``task`` at the shutdown deadline if it still runs then (it
        is put back, its attempt refunded)."""
        assert self._deadline is not None

        def expire() -> None:
            if not task.done():
                self._stop_reasons[job_id] = _Stop.SHUTDOWN
                self._put_back += 1
                task.cancel()

        handle = asyncio.get_running_loop().call_at(self._deadline, expire)
        task.add_done_callback(lambda _: handle.cancel())

    def _done(self, job_id: int) -> None:
        self._running.pop(job_id, None)
        self._stop_reasons.pop(job_id, None)
        self._wake.set()

    # --- running one job ---------------------------------------------------------------------

    async def _run_job(self, job: Job, lease: Lease) -> None:
        started = time.monotonic()
        outcome: Outcome | None
        try:
            outcome = await self._call(job, lease)
        except asyncio.CancelledError:
            reason = self._stop_reasons.get(job.id)
            if reason is None:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            outcome = self._stopped_outcome(job, lease, reason)
        if outcome is None:
            return
        self._outcomes.append(_Finished(job, outcome, time.monotonic() - started))
        self._wake.set()

    async def _call(self, job: Job, lease: Lease) -> Outcome:
        """Run the job's task; whatever it raises is its failure. Only the worker's own
        cancellation (shutdown, cancel request, lost lease) leaves as ``CancelledError``."""
        _current_job.set(job)  # this asyncio task's own context: no reset needed
        running_job.set(True)  # its writes are processing: they go ahead of enqueues
        deadline: asyncio.Timeout | None = None
        try:
            task = self.registry.get(job.task)
            timeout = job.timeout if job.timeout is not None else task.options.timeout
            if timeout is None and self._job_context is None:
                # the common case: no timer and no context manager per job
                value = await call_task(task, job.args, dict(job.kwargs), self._threads)
            else:
                deadline = asyncio.timeout(timeout)
                async with (self._job_context or contextlib.nullcontext)(), deadline:
                    value = await call_task(task, job.args, dict(job.kwargs), self._threads)
            return Outcome(lease, JobState.SUCCEEDED, result=result_json(value))
        except TimeoutError as exc:
            if deadline is not None and deadline.expired():
                error = f"TimeoutError: job exceeded its timeout ({timeout:g}s)"
                return self._failure(job, lease, error, "")
            return self._failure(job, lease, describe(exc), traceback.format_exc())
        except BaseException as exc:
            if self._cancelled_by_worker(job.id):
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise asyncio.CancelledError from exc  # the stop reason decides the outcome
            return self._failure(job, lease, describe(exc), traceback.format_exc())

    def _cancelled_by_worker(self, job_id: int) -> bool:
        """Whether this job's asyncio task was asked to stop (not: the task raised
        ``CancelledError`` itself)."""
        current = asyncio.current_task()
        return job_id in self._stop_reasons or (current is not None and current.cancelling() > 0)

    def _failure(self, job: Job, lease: Lease, error: str, tb: str) -> Outcome:
        run_at = policy.next_run_after_failure(
            job.attempts, job.max_attempts, self._clock(), self.settings.retry
        )
        return Outcome(lease, JobState.FAILED, error=error, traceback=tb or None, run_at=run_at)

    def _stopped_outcome(self, job: Job, lease: Lease, reason: _Stop) -> Outcome | None:
        if reason is _Stop.SHUTDOWN:
            return Outcome(lease, JobState.QUEUED, refund=True)
        if reason is _Stop.CANCEL:
            return Outcome(lease, JobState.CANCELLED, error="cancelled while running")
        log.warning("job %s: lease lost; another worker may run it, not recording a result", job.id)
        return None

    def _recorded(self, finished: _Finished, held: bool) -> None:
        """Log and announce an outcome the store took (or refused: the lease was lost)."""
        job, outcome, elapsed = finished.job, finished.outcome, finished.elapsed
        if not held:
            log.warning(
                "job %s: lease lost before the outcome (%s) was written; write refused",
                job.id,
                outcome.state.value,
            )
            return
        self._emit(log_outcome(job, outcome, elapsed, self.name), job, elapsed)

    def _emit(self, event: str, job: Job, elapsed: float | None) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event, job, elapsed)
            except BaseException:  # SystemExit too: logged, and the pump goes on
                log.exception("job event hook failed")

    # --- leases ------------------------------------------------------------------------------

    async def _beat_loop(self) -> None:
        last_recovery = 0.0
        while True:
            now = self._clock()
            try:
                # a clock stepped back (now < last_recovery) must not pause recovery
                if not 0 <= now - last_recovery < self.settings.lease_seconds / 2:
                    last_recovery = now
                    recovered = await self.backend.recover_expired(now)
                    if recovered:
                        log.warning("recovered %d jobs whose lease expired", recovered)
                        self._wake.set()
                await self._beat(now)
                if not self.settings.burst:
                    await self._register(now)
                if now - self._unserved.last_check >= CHECK_EVERY:
                    me = None if self.settings.burst else self.record(now)
                    await self._unserved.check(self.backend, now, self.name, me)
            except _STORE_DOWN as exc:
                log.warning("worker %s: heartbeat failed (store unavailable): %s", self.name, exc)
            await asyncio.sleep(self.settings.beat_every)

    def record(self, now: float) -> WorkerRecord:
        """This worker as the live-workers registry holds it, refreshed at ``now``."""
        started = now if self._started_at is None else self._started_at
        return WorkerRecord(
            name=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            tasks=tuple(sorted(self.registry.names())),
            queues=self.settings.queues,
            concurrency=self.settings.concurrency,
            started_at=started,
            seen_at=now,
            expires_at=now + EXPIRY_LEASES * self.settings.lease_seconds,
        )

    async def _register(self, now: float) -> None:
        """Write this worker's registry row at start, then every half lease (a clock stepped
        back writes at once): one upsert per interval, whatever the number of jobs."""
        if 0 <= now - self._registered_at < self.settings.lease_seconds / 2:
            return
        if self._started_at is None:
            self._started_at = now  # from here on, a stop removes the row
        self._registered_at = now  # the pump and the heartbeat loop: one write
        try:
            await self.backend.register_worker(self.record(now), now)
        except BaseException:
            self._registered_at = float("-inf")
            raise

    async def _join_registry(self) -> None:
        """The first registry write, before the first claim; a store that is down only
        delays it to a later heartbeat."""
        try:
            await self._register(self._clock())
        except _STORE_DOWN as exc:
            log.warning("worker %s: cannot join the workers registry yet: %s", self.name, exc)

    async def _beat(self, now: float) -> None:
        leases = [lease for _, lease in self._running.values()]
        if not leases:
            return
        for beat in await self.backend.heartbeat(leases, now, self.settings.lease_seconds):
            entry = self._running.get(beat.job_id)
            if entry is None or beat.job_id in self._stop_reasons:
                continue
            if not beat.held:
                self._stop_reasons[beat.job_id] = _Stop.LOST
                entry[0].cancel()
            elif beat.cancel_requested:
                self._stop_reasons[beat.job_id] = _Stop.CANCEL
                entry[0].cancel()
