"""The worker: claims jobs when it has a free slot, runs them, records how they ended.

:class:`Worker` is what applications see (:meth:`Jobs.run_worker`, :meth:`Jobs.start_worker`,
``quart-jobs worker``, the Quart extension's embedded worker). It puts together, each in a
module named for it:

- the claim loop (:mod:`.claim_loop`): records outcomes and claims jobs, one store operation
  per round;
- one job's execution (:mod:`.execution`): the task called, its timeout, its outcome;
- the heartbeat loop (:mod:`.heartbeat`): leases renewed, then the maintenance that is due
  (:mod:`.maintenance`: lease recovery, the live-workers registry, the unserved check);
- the graceful stop (:mod:`.shutdown`): stop claiming, give running jobs ``timeout`` seconds,
  cancel the rest and put them back in the queue without charging the attempt.

The worker's own loops (the claim loop and the heartbeat loop) are supervised here: one that
fails is logged with its traceback and the worker stops claiming and drains the same way. In
burst mode the claim loop ends once nothing is ready and nothing runs, and the worker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .backends.base import Backend, ClaimScope
from .builder import JobBuilder
from .claim_loop import ClaimLoop
from .current import current_job
from .errors import JobsError
from .events import EventHook
from .execution import Execution, StopReason
from .heartbeat import Heartbeat
from .maintenance.lease_recovery import LeaseRecovery
from .maintenance.unserved_check import UnservedWatch
from .maintenance.worker_registry import WorkerRegistration
from .models import WorkerRecord
from .registry import Registry
from .shutdown import Shutdown
from .worker_settings import WorkerSettings

__all__ = ["Worker", "WorkerSettings", "current_job", "worker_name"]

log = logging.getLogger("quart_jobs.worker")


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
        on_event: EventHook | None = None,
        job_context: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None,
        builder: JobBuilder | None = None,
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.settings = settings = settings or WorkerSettings()
        self.name = name = name or worker_name()
        self._clock = clock
        wake = asyncio.Event()  # the claim loop's: a job ended, or may be ready
        self._execution = Execution(
            registry,
            settings.retry,
            name,
            clock=clock,
            on_change=wake.set,
            on_event=on_event,
            job_context=job_context,
            store=backend,
            builder=builder,
        )
        self._registration = WorkerRegistration(backend, name, registry, settings)
        self._claims = ClaimLoop(
            backend,
            registry,
            settings,
            name,
            clock=clock,
            execution=self._execution,
            launched=self._launched,
            join_registry=self._join_registry,
            wake=wake,
        )
        self._heartbeat = Heartbeat(
            backend,
            settings,
            name,
            clock=clock,
            execution=self._execution,
            recovery=LeaseRecovery(backend, settings.lease_seconds, self.notify),
            registration=self._registration,
            unserved=UnservedWatch(registry.names(), settings.queues),
        )
        self._shutdown = Shutdown(
            name, claims=self._claims, execution=self._execution, registration=self._registration
        )
        self._main: asyncio.Task[None] | None = None  # the claim loop
        self._beats: asyncio.Task[None] | None = None  # the heartbeat loop
        self._stopper: asyncio.Task[None] | None = None
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
        self._main = self._supervised(self._claims.run(), "pump")
        self._beats = self._supervised(self._heartbeat.run(), "heartbeat")
        self.backend.subscribe(self.notify)
        log.info("worker %s started (concurrency %d)", self.name, self.settings.concurrency)

    def notify(self) -> None:
        """Wake the worker: a job may be ready (called on enqueue in this process)."""
        self._claims.wake()

    async def wait(self) -> None:
        """Until the worker stops claiming by itself (burst mode: nothing ready and nothing
        running any more) or through :meth:`stop`."""
        if self._main is not None:
            await asyncio.shield(self._main)

    def stop_claiming(self) -> None:
        """Claim no more jobs; running ones go on (the first step of a graceful stop)."""
        self._claims.stop_claiming()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; wait up to ``timeout`` for running jobs; requeue the rest. Stopping
        twice (or after the worker stopped on its own) waits for the same stop."""
        if self._stopper is None:
            self._stopper = asyncio.create_task(
                self._shut_down(timeout), name=f"quart-jobs stop {self.name}"
            )
        await self._stopper

    async def run_until(self, event: asyncio.Event) -> None:
        """Return when ``event`` is set (a signal, say) or when the worker stopped on its own
        (then :attr:`failure` says why)."""
        waits = [asyncio.create_task(e.wait()) for e in (event, self.stopped)]
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for waiting in pending:
            waiting.cancel()

    async def cancel_local(self, job_id: int) -> bool:
        """Cancel a job this worker runs (it is recorded as cancelled)."""
        return self._execution.stop(job_id, StopReason.CANCEL)

    def scope(self) -> ClaimScope:
        """What this worker may claim: its registered tasks, from its queues."""
        return self._claims.scope()

    def record(self, now: float) -> WorkerRecord:
        """This worker as the live-workers registry holds it, refreshed at ``now``."""
        return self._registration.record(now)

    # --- supervision -------------------------------------------------------------------------

    def _supervised(self, loop: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(loop, name=f"quart-jobs {what} {self.name}")
        task.add_done_callback(functools.partial(self._loop_ended, what))
        return task

    def _loop_ended(self, what: str, task: asyncio.Task[None]) -> None:
        """A loop of the worker ended: fine when stopping; otherwise log it and drain."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None and self._claims.stopping:
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

    async def _shut_down(self, timeout: float | None) -> None:
        """The graceful stop (:mod:`.shutdown`), with the worker's own loops."""
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        self.stop_claiming()
        self.backend.unsubscribe(self.notify)
        if self._main is not None and self._main.done():
            # The claim loop failed: a new one (claiming nothing) records the drain's outcomes.
            self._main = self._supervised(self._claims.run(), "pump")
        await self._shutdown.drain(timeout, self._main)
        if self._beats is not None:
            self._beats.cancel()
            await asyncio.wait([self._beats])
        await self._shutdown.release()
        self.stopped.set()
        log.info("worker %s stopped", self.name)

    def _launched(self, job_id: int, task: asyncio.Task[object]) -> None:
        self._shutdown.arm_late(job_id, task)

    async def _join_registry(self) -> None:
        await self._registration.join(self._clock())
