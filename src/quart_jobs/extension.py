"""The Quart extension: ``QuartJobs(app)`` or ``jobs.init_app(app)``.

Settings come from ``app.config`` (``QUART_JOBS_*``, listed in :mod:`quart_jobs.settings`);
keywords of the constructor (``QuartJobs(app, concurrency=8)``) are their defaults. The store is
opened before serving; an embedded worker starts with it and is drained on shutdown: it stops
claiming as soon as ``app.shutdown_event`` is set, running jobs get
``QUART_JOBS_SHUTDOWN_TIMEOUT`` seconds, and the rest go back to the queue. Jobs run inside the
app context. ``quart jobs …`` commands are added to ``app.cli``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from quart import Quart, current_app
from quart.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, NotFound

from . import settings, tracing
from .commands import jobs_command_group
from .errors import JobNotFound
from .jobs import Jobs
from .worker import Worker

log = logging.getLogger("quart_jobs")

EXTENSION_KEY = "quart_jobs"

#: :class:`Jobs` keywords that the extension's settings replace, and what to pass instead.
_SET_BY_SETTINGS = {
    "url": "database_url=",
    "worker_settings": "concurrency=, lease_seconds=, retry_base=, ... (one keyword each)",
    "backend_options": "sqlite_synchronous=, postgres_schema=, ... (one keyword each)",
}


class QuartJobs(Jobs):
    """:class:`Jobs` bound to a Quart app's lifecycle and configuration.

    ``QuartJobs(app)``, or ``jobs = QuartJobs()`` then ``jobs.init_app(app)`` in an app
    factory. The app's ``QUART_JOBS_*`` settings are read when the store is opened (before
    serving, or by a ``quart jobs`` command). Inside a job, the app context is active
    (``current_app`` works).

    Every setting of :mod:`quart_jobs.settings` is a keyword here and a key of ``app.config``:
    ``QuartJobs(app, database_url="postgresql://…", concurrency=8)`` makes those values the
    defaults of ``QUART_JOBS_DATABASE_URL`` and ``QUART_JOBS_CONCURRENCY``
    (``app.config.setdefault``), so a value the app puts in its config wins, and the app's CLI,
    scripts and the server all see the same values. The other keywords of :class:`Jobs`
    (``default_priority``, ``queue_limits``, ``clock``) are passed to it; those that the
    settings replace (``url``, ``worker_settings``, ``backend_options``) are refused.
    """

    def __init__(self, app: Quart | None = None, **options: Any) -> None:
        keywords = {name: options.pop(name) for name in list(options) if name in settings.BY_NAME}
        for name, instead in _SET_BY_SETTINGS.items():
            if name in options:
                raise TypeError(f"QuartJobs() takes {instead}, not {name}=")
        super().__init__(**options)
        #: The defaults of the ``QUART_JOBS_*`` keys: the constructor's keywords, checked.
        self.config_defaults: dict[str, Any] = settings.checked_keywords(keywords)
        self.embedded_worker = True
        self._apply(self.config_defaults)
        self.app: Quart | None = None
        self.embedded: Worker | None = None
        self._watcher: asyncio.Task[None] | None = None
        #: Coroutines run after the store is opened and before the embedded worker starts
        #: (the application's own migrations, seeding).
        self.on_open: list[Callable[[], Awaitable[None]]] = []
        #: Undoes the tracing this extension turned on (``QUART_JOBS_TRACING``), at close.
        self._untrace: Callable[[], None] | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        """Bind to ``app``: default ``QUART_JOBS_*`` settings, ``before_serving`` and
        ``after_serving`` hooks, the ``quart jobs`` commands, ``app.extensions["quart_jobs"]``."""
        for key, value in self.config_defaults.items():
            app.config.setdefault(key, value)
        app.extensions[EXTENSION_KEY] = self
        self.app = app
        app.before_serving(self._before_serving)
        app.after_serving(self._after_serving)
        if JobNotFound not in app.error_handler_spec.get(None, {}).get(None, {}):
            app.register_error_handler(JobNotFound, _job_not_found)
        app.cli.add_command(jobs_command_group(self._configured_from_app), "jobs")

    def _configured_from_app(self) -> QuartJobs:
        if self.app is not None:
            self.configure_from(self.app)
        return self

    def configure_from(self, app: Quart) -> None:
        """Apply ``app.config`` (called when the store is opened, and by the CLI before)."""
        self._apply(app.config)
        self.job_context = app.app_context  # type: ignore[assignment]

    def _apply(self, config: Mapping[str, Any]) -> None:
        values = settings.read(config)
        self._configure(
            values["database_url"],
            backend_options=settings.backend_options(values),
            max_attempts=values["max_attempts"],
            max_args_bytes=values["max_args_bytes"],
            worker_settings=settings.worker_settings(values),
            embedded_worker=values["embedded_worker"],
            retention=values["retention"],
        )
        self.tracing: str = values["tracing"]

    async def open(self) -> None:
        """Open the store configured by ``app.config``, then run the :attr:`on_open` hooks
        (the app's own migrations). Serving, the CLI and scripts all come through here. If a
        hook fails, the store is closed again before the error propagates, so the next open
        (of the next app, say, with another database) starts from its own configuration."""
        if self._handle.opened:
            return
        if self.app is not None:
            self.configure_from(self.app)
        if self._untrace is None:
            self._untrace = tracing.instrument(self.tracing)
        await super().open()
        try:
            for hook in self.on_open:
                await hook()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close as :meth:`Jobs.close` does, and undo the tracing that :meth:`open` turned on."""
        try:
            await super().close()
        finally:
            if self._untrace is not None:
                self._untrace()
                self._untrace = None

    async def _before_serving(self) -> None:
        assert self.app is not None
        show_job_logs()
        await self.open()
        try:
            self.start_retention()
            if self.embedded_worker:
                self.embedded = self.start_worker()
                self._watcher = asyncio.create_task(self._watch_shutdown(self.app, self.embedded))
        except BaseException:  # the app does not serve: nothing of it stays open
            await self._after_serving()
            raise

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


class _UntilConfigured(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes the library's lines to stderr while the process has no logging of its own; once
    the root logger has a handler, the lines reach it by propagation, and this one stays
    quiet (a line is never written twice)."""

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


def show_job_logs() -> None:
    """Let the library's INFO lines (a worker started, stopped; jobs retried, failed) reach
    stderr in a served app whose process configured no logging (``quart run``, Hypercorn),
    as ``quart-jobs worker`` shows them. Nothing changes when the application (or the server)
    set up logging: the root logger or ``quart_jobs`` has a handler."""
    library = logging.getLogger("quart_jobs")
    if library.handlers or logging.getLogger().handlers:
        return
    handler = _UntilConfigured(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    library.addHandler(handler)
    if library.level == logging.NOTSET:
        library.setLevel(logging.INFO)


async def _job_not_found(error: JobNotFound) -> HTTPException | ResponseReturnValue:
    """A route that looks up a job that does not exist (``await jobs.get(id)``) answers 404,
    as the app answers any 404 (its own handler of ``NotFound``, else Quart's), not 500. An
    app that registers its own handler of :class:`JobNotFound` keeps it."""
    return await current_app.handle_http_exception(NotFound(str(error)))


def get_jobs(app: Quart) -> QuartJobs:
    """The :class:`QuartJobs` bound to ``app`` (``get_jobs(current_app)`` in a blueprint)."""
    jobs = app.extensions.get(EXTENSION_KEY)
    if not isinstance(jobs, QuartJobs):
        raise RuntimeError("this app has no QuartJobs extension; call QuartJobs(app)")
    return jobs
