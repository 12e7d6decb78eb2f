"""Several web processes on one listening socket, under one supervisor (``WEB_PROCESSES``).

The parent has opened the store and bound the socket before it starts any child, so a taken
port or a bad database stops start-up before a job is claimed. Each child is a fresh
interpreter (``spawn``: no thread or connection of the parent is inherited) that runs a target
on the inherited socket: the same server, app and embedded worker as a single process.

Why not the servers' own supervisors: Hypercorn's (``-w N``) terminates the remaining workers
as soon as one exits, cutting their drains short, and its children die at once of a SIGTERM
sent to the whole process group. uvicorn's (``workers=N``) builds uvicorn's own server in each
child, which re-raises the signal after its drain (children die of it), cannot tell the app
that a stop began (a long poll then holds the drain up to its own end), serves uvicorn only,
and changed its interface within the versions this service accepts. What is needed is small:

* SIGINT and SIGTERM (to the supervisor alone, or to the whole group as a terminal's Ctrl-C
  does) are forwarded once to every child as SIGTERM; each child drains as a single process
  does (stop accepting, in-flight requests and long polls end, running jobs get
  ``SHUTDOWN_TIMEOUT``, the rest go back uncharged) and exits 0; the group exits 0 once every
  child has. A child still alive ``SHUTDOWN_TIMEOUT`` + 4 s after the signal is killed and the
  group exits 1 naming it.
* A child that dies while serving (``kill -9``, a crash) is replaced at once, with a warning
  naming its exit; its jobs come back when their leases expire, as after any crash. A child
  that fails its start-up (exit code 2, after printing its one line) stops the group with exit
  code 2; children dying more than :data:`MAX_DEATHS` times within :data:`DEATH_WINDOW`
  seconds stop it with exit code 1 and one line.
* The children's metrics are counted in one directory (:func:`shared_metrics`): a scrape
  of ``/metrics`` sums every child's counters, whichever child answers it; and the
  per-customer request limit and the admin's login throttling hold for the group
  (:func:`shared_limits`).
* A child dies with the supervisor (Linux: :func:`die_with`): ``kill -9`` of the supervisor
  leaves no process serving on the port.
* Children are started with SIGINT and SIGTERM blocked, so a signal that arrives while one
  still imports stays pending until its server has installed its handlers
  (:func:`unblock_stop_signals`): no traceback, no child killed before it can drain.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import click

from quart_jobs.metrics import MULTIPROC_ENV

from .shared import GROUP_DIR_ENV

log = logging.getLogger("orders")

#: The exit code of a child whose start-up failed (it printed its one line): the group stops.
STARTUP_FAILURE = 2
#: More child deaths than this within :data:`DEATH_WINDOW` seconds stop the group.
MAX_DEATHS = 5
DEATH_WINDOW = 60.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: ``prctl`` option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def unblock_stop_signals() -> None:
    """Deliver SIGINT/SIGTERM again (a child starts with them blocked); call it once the
    handlers that drain are installed. Nothing to do in a process that never blocked them."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _child(supervisor: int, target: Callable[..., None], args: tuple[Any, ...]) -> None:
    """A child's start: it dies with the supervisor, then runs ``target(*args)``."""
    die_with(supervisor)
    target(*args)


def die_with(parent: int) -> None:
    """Have the kernel SIGKILL this process when ``parent`` (the supervisor) dies, however
    it dies (``kill -9`` too): a group whose supervisor is gone must not keep serving on the
    port, or the service started again cannot bind it. As ``kill -9`` of one process does, it
    leaves the running jobs to their leases. Linux only (``prctl``); elsewhere a child outlives
    a killed supervisor."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the supervisor died before the line above
        os._exit(1)


@contextlib.contextmanager
def _group_directory(env: str, prefix: str) -> Iterator[None]:
    """A fresh directory named in ``env`` for the children, removed after the group."""
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        os.environ[env] = directory
        try:
            yield
        finally:
            del os.environ[env]


def shared_limits() -> contextlib.AbstractContextManager[None]:
    """The children count each customer's requests and each client's failed logins together,
    in files of a fresh directory for the group (:mod:`.shared`)."""
    return _group_directory(GROUP_DIR_ENV, "orders-group-")


def shared_metrics() -> contextlib.AbstractContextManager[None]:
    """The children count their metrics in one directory (``prometheus_client``'s
    multiprocess mode), so ``GET /metrics``, whichever child answers it, sums what every
    child counted. A fresh directory for the group (an operator's own
    ``PROMETHEUS_MULTIPROC_DIR`` is used as it is)."""
    if os.environ.get(MULTIPROC_ENV):
        return contextlib.nullcontext()
    return _group_directory(MULTIPROC_ENV, "orders-metrics-")


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Group:
    """``count`` children running ``target(*args)``; :meth:`run` supervises them until a stop
    signal and returns the group's exit code."""

    def __init__(
        self,
        target: Callable[..., None],
        args: tuple[Any, ...],
        count: int,
        *,
        stop_timeout: float,
        name: str = "web process",
    ) -> None:
        self.target = target
        self.args = args
        self.count = count
        self.stop_timeout = stop_timeout
        self.name = name
        self.children: list[BaseProcess] = []
        self._context = multiprocessing.get_context("spawn")
        self._signals: list[int] = []

    def run(self) -> int:
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        previous_fd = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        try:
            self.children = [self._start() for _ in range(self.count)]
            code = self._supervise(wake_read)
            stopped = self._stop()
            return stopped if code is None else code
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            wake_read.close()
            wake_write.close()

    def _on_signal(self, sig: int, frame: object) -> None:
        self._signals.append(sig)

    def _start(self) -> BaseProcess:
        child = self._context.Process(
            target=_child, args=(os.getpid(), self.target, self.args), daemon=False
        )
        with _stop_signals_blocked():  # the child inherits the mask; see unblock_stop_signals
            child.start()
        return child

    def _supervise(self, wake: socket.socket) -> int | None:
        """Until a stop signal (``None``) or a reason to stop the group (its exit code)."""
        deaths: list[float] = []
        while not self._signals:
            ready = wait([wake, *(c.sentinel for c in self.children)], timeout=1.0)
            with contextlib.suppress(BlockingIOError):
                wake.recv(512)
            if self._signals:
                return None
            for index, child in enumerate(self.children):
                if child.sentinel not in ready:
                    continue
                child.join(1.0)  # its pipe closes a moment before it can be reaped
                if child.exitcode is None:
                    continue
                if child.exitcode == STARTUP_FAILURE:
                    click.echo(f"orders: a {self.name} failed to start (above); stopping", err=True)
                    return STARTUP_FAILURE
                now = time.monotonic()
                deaths = [t for t in deaths if now - t < DEATH_WINDOW] + [now]
                if len(deaths) > MAX_DEATHS:
                    click.echo(
                        f"orders: {self.name}es died {len(deaths)} times within "
                        f"{DEATH_WINDOW:.0f} s (last: pid {child.pid}, "
                        f"{describe_exit(child.exitcode)}); stopping",
                        err=True,
                    )
                    return 1
                log.warning(
                    "%s %s stopped (%s); starting another in its place",
                    self.name,
                    child.pid,
                    describe_exit(child.exitcode),
                )
                self.children[index] = self._start()
        return None

    def _stop(self) -> int:
        """SIGTERM to every child still running, then wait for each: 0 when all drained."""
        for child in self.children:
            if child.exitcode is None and child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        failed = []
        for child in self.children:
            child.join(max(0.0, deadline - time.monotonic()))
            if child.exitcode is None and child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                child.join()
                failed.append(f"pid {child.pid} did not stop in time and was killed")
            elif child.exitcode not in (0, -signal.SIGTERM, STARTUP_FAILURE):
                # -SIGTERM: a child still starting (its handlers not yet in place, nothing
                # claimed); STARTUP_FAILURE: it printed its own line already.
                failed.append(f"pid {child.pid} {describe_exit(child.exitcode)}")
        if failed:
            click.echo(f"orders: {self.name}es did not stop cleanly: {'; '.join(failed)}", err=True)
            return 1
        return 0
