"""The claim loop: where a worker claims jobs, and records how the jobs it ran ended.

One store operation per round (:meth:`Backend.finish_and_claim`, one transaction and one
commit) writes the outcomes of the jobs that ended since the last round and claims as many
ready jobs as the worker has free slots, so a job the worker holds is always one it is
running: nothing is prefetched past a VIP job that arrives later.

Between rounds the loop sleeps until something happens: an enqueue in this process
(:meth:`ClaimLoop.wake`), a job that ends, the next delayed job coming due, or the poll
interval (for jobs that other processes enqueue). Woken by the poll timer, it first reads
whether a job is ready before taking the store's write lock, so idle workers of several
processes do not take turns writing to find nothing. A store out of reach is waited out
with backoff. In burst mode the loop ends once nothing is ready, nothing runs and nothing is
left to record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .backends.base import Backend, ClaimScope
from .backends.effects import recorded_outcome
from .errors import STORE_DOWN
from .execution import Execution
from .registry import Registry
from .worker_settings import WorkerSettings

log = logging.getLogger("quart_jobs.worker")

#: Seconds a worker waits after a claim that left slots free while jobs it may not take look
#: ready (see :meth:`ClaimLoop._idle_wait`).
MIN_IDLE_WAIT = 0.05


class ClaimLoop:
    """Records outcomes and claims jobs for one worker (see the module).

    ``launched(job_id, task)`` is called for each job it starts once it is stopping (the
    shutdown arms its deadline on such a job); ``join_registry()`` lists the worker as live
    before its first claim; setting ``wake`` sends the loop round (the worker's execution sets
    it when a job ends).
    """

    def __init__(
        self,
        backend: Backend,
        registry: Registry,
        settings: WorkerSettings,
        worker: str,
        *,
        clock: Callable[[], float],
        execution: Execution,
        launched: Callable[[int, asyncio.Task[object]], None],
        join_registry: Callable[[], Awaitable[None]],
        wake: asyncio.Event,
    ) -> None:
        self._backend = backend
        self._registry = registry
        self._settings = settings
        self._worker = worker
        self._clock = clock
        self._execution = execution
        self._launched = launched
        self._join_registry = join_registry
        self._wake = wake
        #: Set by :meth:`stop_claiming`: the loop records what ends and claims nothing more.
        self.stopping = False

    def wake(self) -> None:
        """Go round now: a job may be ready, or one ended."""
        self._wake.set()

    def stop_claiming(self) -> None:
        self.stopping = True
        self._wake.set()

    def scope(self) -> ClaimScope:
        """What the worker may claim: its registered tasks, from its queues."""
        settings = self._settings
        return ClaimScope(tuple(self._registry.names()), settings.queues, settings.weights)

    async def run(self) -> None:
        """Record finished jobs' outcomes and claim new jobs, both in one store operation:
        one transaction (one commit) per round, however many jobs ended or start."""
        settings, running = self._settings, self._execution.running
        failures = 0
        look_first = False  # woken by the poll timer: read before taking the write lock
        if not settings.burst and not self.stopping:
            await self._join_registry()  # listed as live before its first claim
        while True:
            self._wake.clear()  # whatever happens from here on wakes the next sleep
            look_first = look_first and not settings.burst
            outcomes, self._execution.outcomes = self._execution.outcomes, []
            free = 0 if self.stopping else settings.concurrency - len(running)
            if free > 0 and look_first and not outcomes and not await self._ready_or_down():
                free = 0
            if not outcomes and free <= 0:
                if self.stopping and not running:
                    return
                busy = self.stopping or len(running) >= settings.concurrency
                wait = settings.poll_interval if busy else await self._idle_wait()
                look_first = not await self._sleep(wait)  # a finishing job wakes us
                continue
            try:
                done = await self._backend.claim_round(
                    [f.outcome for f in outcomes],
                    self._worker,
                    free,
                    self._clock(),
                    settings.lease_seconds,
                    self.scope(),
                )
                failures = 0
            except STORE_DOWN as exc:
                failures += 1
                if self.stopping and failures > 5:
                    log.error(
                        "worker %s: %d outcomes not recorded (%s); their leases expire and "
                        "the jobs run again",
                        self._worker,
                        len(outcomes),
                        exc,
                    )
                    return
                self._execution.outcomes[:0] = outcomes
                pause = min(5.0, 0.1 * 2**failures)
                log.warning(
                    "worker %s: store unavailable (retry in %.1fs): %s", self._worker, pause, exc
                )
                await self._sleep(pause)
                continue
            except BaseException:
                self._execution.outcomes[:0] = outcomes  # not written: the drain after this tries
                raise
            claimed = done.claimed
            for finished, was_held in zip(outcomes, done.held, strict=True):
                if finished.outcome.effects is not None:  # a failure instead, if they raised
                    finished.outcome = recorded_outcome(finished.outcome)
                self._execution.recorded(finished, was_held)
            for job in claimed:
                task = self._execution.start(job)
                if self.stopping:  # claimed by a round in flight at the stop
                    self._launched(job.id, task)
            if settings.burst and not claimed and not running and not self._execution.outcomes:
                return  # burst mode: nothing was ready, nothing runs, nothing to record
            if free > 0 and len(claimed) == free:
                look_first = False  # full: there may be more, go again
                continue
            if free > 0:  # fewer ready than free slots: wait for news or the next poll
                wait = self._idle_wait_after(done.next_at)  # read by the round itself
                look_first = not await self._sleep(wait)

    async def _ready_or_down(self) -> bool:
        """Whether to claim after an idle poll: a job is ready (or the store cannot tell)."""
        try:
            return await self._work_ready()
        except STORE_DOWN:
            return True

    async def _work_ready(self) -> bool:
        """Whether a queued job is ready now: a cheap read, so idle workers of several processes
        do not take turns holding the database's write lock to find nothing."""
        next_at = await self._backend.next_run_at(self.scope())
        return next_at is not None and next_at <= self._clock()

    async def _idle_wait(self) -> float:
        """How long to sleep before looking again: until the next job this worker could take
        is due, at most ``poll_interval``."""
        try:
            return self._until(await self._backend.next_run_at(self.scope()))
        except STORE_DOWN:
            return self._settings.poll_interval

    def _idle_wait_after(self, next_at: float | None) -> float:
        """:meth:`_idle_wait` after a claim that left slots free, from the ``next_at`` its
        round read. A job still ready then is one the claim could not take (an unregistered
        task's, a concurrency key at its limit, one another process took meanwhile): the
        worker waits :data:`MIN_IDLE_WAIT` (or ``poll_interval``, if shorter) instead of
        claiming again at once, in a loop. An enqueue or a finished job still wakes it at
        once."""
        wait = self._until(next_at)
        return wait if wait > 0.0 else min(self._settings.poll_interval, MIN_IDLE_WAIT)

    def _until(self, next_at: float | None) -> float:
        """Seconds until ``next_at``, at most ``poll_interval`` (that, for ``None``)."""
        wait = self._settings.poll_interval
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
