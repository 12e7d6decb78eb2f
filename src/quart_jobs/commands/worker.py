"""``worker``: run a worker in this process until SIGTERM or SIGINT, then drain it gracefully
(or, with ``--burst``, until no job is ready and none runs)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

import click

from ..backends.base import queue_names
from ..errors import ConfigurationError
from ..jobs import Jobs
from .session import Failed, JobsFactory, Unusable, load, run_action


def worker_command(factory: JobsFactory) -> click.Command:
    """The ``worker`` command, on the :class:`Jobs` (with its tasks) that ``factory`` returns."""

    @click.command(help="Run a worker until SIGTERM or SIGINT (then drain gracefully).")
    @click.option("--concurrency", type=click.IntRange(min=1), help="Jobs run at once.")
    @click.option("--shutdown-timeout", type=click.FloatRange(min=0), help="Seconds to drain.")
    @click.option(
        "--queues",
        envvar="QUART_JOBS_QUEUES",
        help="Claim only from these queues (comma-separated; default: every queue).",
    )
    @click.option(
        "--burst",
        is_flag=True,
        help="Run the jobs that are ready (and those they enqueue), then exit 0 once none is "
        "ready and none runs; jobs delayed into the future are not waited for. No schedules.",
    )
    def worker(
        concurrency: int | None, shutdown_timeout: float | None, queues: str | None, burst: bool
    ) -> None:
        overrides: dict[str, Any] = {"burst": True} if burst else {}
        if queues:
            try:
                overrides["queues"] = queue_names(queues)
            except ConfigurationError as exc:
                raise click.UsageError(str(exc)) from None
        if concurrency is not None:
            overrides["concurrency"] = concurrency
        if shutdown_timeout is not None:
            overrides["shutdown_timeout"] = shutdown_timeout
        jobs = load(factory)
        if not jobs.registry.names():
            raise Unusable(
                "no tasks to run: pass --app MODULE:ATTR, the module (or Quart app) that "
                "registers your tasks with @jobs.task"
            )
        log_to_stderr()
        run_action(
            lambda: jobs, lambda j: run_worker_until_signal(j, **overrides), creates_store=True
        )

    return worker


def log_to_stderr() -> None:
    """Show the library's INFO and WARNING lines on stderr (a job that failed for good, a store
    out of reach), unless the application configured logging itself."""
    root = logging.getLogger()
    library = logging.getLogger("quart_jobs")
    if root.handlers or library.handlers:
        return
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if library.level == logging.NOTSET:
        library.setLevel(logging.INFO)


async def run_worker_until_signal(jobs: Jobs, **overrides: Any) -> None:
    """Run one worker until SIGTERM/SIGINT, then stop it gracefully. A worker that stopped on
    its own (one of its loops failed; the log has the traceback) ends the command, exit 1."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with jobs.run_worker(**overrides) as worker:
            click.echo(
                f"worker {worker.name} running {', '.join(jobs.registry.names()) or 'no tasks'}",
                err=True,
            )
            await worker.run_until(stop)
            if worker.failure is not None:
                raise Failed(f"the worker stopped after an internal failure: {worker.failure!r}")
            if worker.stopped.is_set():  # a burst that is done
                click.echo("no job ready and none running: done", err=True)
            else:
                click.echo("stopping: running jobs get the shutdown timeout", err=True)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
