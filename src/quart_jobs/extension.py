"""The Quart extension: ``QuartJobs(app)`` or ``jobs.init_app(app)``.

Settings come from ``app.config`` (``QUART_JOBS_*``). The store is opened before serving; an
embedded worker starts with it and is drained on shutdown: it stops claiming as soon as
``app.shutdown_event`` is set, running jobs get ``QUART_JOBS_SHUTDOWN_TIMEOUT`` seconds, and the
rest go back to the queue. Jobs run inside the app context. ``quart jobs …`` commands are added
to ``app.cli``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Quart

from . import policy
from .backends.base import queue_names
from .jobs import Jobs
from .worker import Worker, WorkerSettings

log = logging.getLogger("quart_jobs")

DEFAULTS: dict[str, Any] = {
    "QUART_JOBS_DATABASE_URL": "sqlite:///var/jobs.sqlite3",
    "QUART_JOBS_EMBEDDED_WORKER": True,
    "QUART_JOBS_CONCURRENCY": 4,
    "QUART_JOBS_SHUTDOWN_TIMEOUT": 20.0,
    "QUART_JOBS_MAX_ATTEMPTS": 5,
    # Shares of the priority levels ({priority: weight}; see quart_jobs.policy.Weights).
    "QUART_JOBS_WEIGHTS": dict(policy.DEFAULT_WEIGHTS),
    # The queues the embedded worker claims from ("a,b" or a list); None: every queue.
    "QUART_JOBS_QUEUES": None,
    "QUART_JOBS_LEASE_SECONDS": 30.0,
    "QUART_JOBS_POLL_INTERVAL": 0.5,
    "QUART_JOBS_SQLITE_SYNCHRONOUS": "FULL",
}

EXTENSION_KEY = "quart_jobs"


class QuartJobs(Jobs):
    """:class:`Jobs` bound to a Quart app's lifecycle and configuration."""

    def __init__(self, app: Quart | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.app: Quart | None = None
        self.embedded: Worker | None = None
        self._watcher: asyncio.Task[None] | None = None
        #: Coroutines run after the store is opened and before the embedded worker starts
        #: (the application's own migrations, seeding).
        self.on_open: list[Callable[[], Awaitable[None]]] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        app.extensions[EXTENSION_KEY] = self
        self.app = app
        app.before_serving(self._before_serving)
        app.after_serving(self._after_serving)

        from .cli import jobs_command_group

        app.cli.add_command(jobs_command_group(lambda: self), "jobs")

    def configure_from(self, app: Quart) -> None:
        """Apply ``app.config`` (called before serving and by the CLI)."""
        cfg = app.config
        if "QUART_JOBS_AGING_SECONDS" in cfg:
            log.warning(
                "QUART_JOBS_AGING_SECONDS is no longer used and is ignored: fair scheduling "
                "replaced aging (set QUART_JOBS_WEIGHTS to change the tiers' shares)"
            )
        queues = cfg["QUART_JOBS_QUEUES"]
        url = cfg["QUART_JOBS_DATABASE_URL"]
        options: dict[str, Any] = {}
        if isinstance(url, str) and url.startswith("sqlite:"):
            options["synchronous"] = cfg["QUART_JOBS_SQLITE_SYNCHRONOUS"]
        self.configure(
            url,
            backend_options=options,
            max_attempts=int(cfg["QUART_JOBS_MAX_ATTEMPTS"]),
            worker_settings=WorkerSettings(
                concurrency=int(cfg["QUART_JOBS_CONCURRENCY"]),
                lease_seconds=float(cfg["QUART_JOBS_LEASE_SECONDS"]),
                poll_interval=float(cfg["QUART_JOBS_POLL_INTERVAL"]),
                weights=policy.Weights.of(cfg["QUART_JOBS_WEIGHTS"]),
                queues=None if not queues else queue_names(queues),
                shutdown_timeout=float(cfg["QUART_JOBS_SHUTDOWN_TIMEOUT"]),
            ),
        )
        self.job_context = app.app_context  # type: ignore[assignment]

    async def open(self) -> None:
        """Open the store configured by ``app.config``, then run the :attr:`on_open` hooks
        (the app's own migrations). Serving, the CLI and scripts all come through here."""
        if self._opened:
            return
        if self.app is not None:
            self.configure_from(self.app)
        await super().open()
        for hook in self.on_open:
            await hook()

    async def _before_serving(self) -> None:
        assert self.app is not None
        await self.open()
        if self.app.config["QUART_JOBS_EMBEDDED_WORKER"]:
            self.embedded = self.start_worker()
            self._watcher = asyncio.create_task(self._watch_shutdown(self.app, self.embedded))

    async def _watch_shutdown(self, app: Quart, worker: Worker) -> None:
        await app.shutdown_event.wait()  # type: ignore[attr-defined]
        log.info("shutting down: no new jobs are claimed")
        worker.stop_claiming()

    async def _after_serving(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        if self.embedded is not None:
            await self.stop_worker(self.embedded)
            self.embedded = None
        await self.close()


def get_jobs(app: Quart) -> QuartJobs:
    jobs = app.extensions.get(EXTENSION_KEY)
    if not isinstance(jobs, QuartJobs):
        raise RuntimeError("this app has no QuartJobs extension; call QuartJobs(app)")
    return jobs
