"""The settings of the Quart extension, in one table.

Each :class:`Setting` is both a ``QUART_JOBS_*`` key of ``app.config`` and a keyword argument
of ``QuartJobs(app, ...)``. A keyword becomes the default of its key
(``app.config.setdefault``): a value the app puts in its config wins, and nothing given to the
constructor is silently replaced.

Defaults are not repeated here: the worker's come from :class:`~quart_jobs.WorkerSettings`, the
jobs' from :class:`~quart_jobs.Jobs`; the store's options default to ``None``, which means "not
passed": the backend's own default applies (``SQLiteBackend``, ``PostgresBackend``), and an
option of the other backend is ignored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .backends import DEFAULT_DATABASE_URL
from .backends.base import queue_names
from .backends.sqlite.writer import SYNCHRONOUS_MODES
from .builder import DEFAULT_MAX_ARGS_BYTES, DEFAULT_MAX_ATTEMPTS
from .errors import ConfigurationError
from .fairness import Weights
from .maintenance.retention import parse_retention
from .retries import RetryPolicy
from .worker_settings import WorkerSettings

PREFIX = "QUART_JOBS_"

log = logging.getLogger("quart_jobs")

Parse = Callable[[Any], Any]

_WORKER = WorkerSettings()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class _Invalid(ValueError):
    """A value that does not fit a setting; the message says what would."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: ``QuartJobs(app, name=...)`` or ``app.config["QUART_JOBS_NAME"]``."""

    name: str
    default: Any
    parse: Parse
    help: str
    #: For a store option: the URL scheme of the backend that takes it, and its parameter.
    scheme: str | None = None
    option: str | None = None

    @property
    def key(self) -> str:
        return PREFIX + self.name.upper()

    def check(self, value: Any, *, label: str | None = None) -> Any:
        """``value`` parsed, or a :class:`ConfigurationError` naming the setting."""
        try:
            return self.parse(value)
        except _Invalid as exc:
            where = label or self.key
            raise ConfigurationError(f"{where}={value!r}: {exc}") from None


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Invalid("use true or false (1 or 0)")


def _tracing(value: Any) -> str:
    """``auto``, ``on`` or ``off`` (booleans and 1/0 say on and off)."""
    text = str(value).strip().lower()
    if text == "auto":
        return text
    try:
        return "on" if _boolean(value) else "off"
    except _Invalid:
        raise _Invalid("use auto, on (true, 1) or off (false, 0)") from None


def _integer(minimum: int) -> Parse:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise _Invalid(f"use a whole number of at least {minimum}")
        try:
            number = int(value)
        except ValueError:
            raise _Invalid(f"use a whole number of at least {minimum}") from None
        if number < minimum:
            raise _Invalid(f"must be at least {minimum}")
        return number

    return parse


def _number(*, positive: bool) -> Parse:
    need = "a finite number above 0" if positive else "a finite number of at least 0"

    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _Invalid(f"use {need}")
        try:
            number = float(value)
        except ValueError:
            raise _Invalid(f"use {need}") from None
        # NaN fails the comparisons; infinity means no setting here (no end, no wait).
        if not math.isfinite(number) or number < 0 or (positive and number == 0):
            raise _Invalid(f"use {need}")
        return number

    return parse


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid("use a non-empty string")
    return value.strip()


def _choice(choices: tuple[str, ...]) -> Parse:
    def parse(value: Any) -> str:
        text = str(value).strip().upper()
        if text not in choices:
            raise _Invalid(f"use one of {', '.join(choices)}")
        return text

    return parse


def _optional(parse: Parse) -> Parse:
    def parse_optional(value: Any) -> Any:
        return None if value is None else parse(value)

    return parse_optional


_seconds = _number(positive=True)


def _weights(value: Any) -> dict[int, float]:
    """``{priority: weight}`` (or ``"0:9,10:1"``), checked by :class:`Weights`."""
    if isinstance(value, Weights):
        return dict(value.by_priority)
    try:
        if isinstance(value, str):
            pairs = [item.split(":", 1) for item in value.split(",") if item.strip()]
            value = {int(p): float(w) for p, w in pairs}
        if not isinstance(value, Mapping):
            raise ValueError("not a mapping")
        return dict(Weights({int(p): float(w) for p, w in value.items()}).by_priority)
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"use {{priority: weight}} or 'priority:weight,...' ({exc})") from None


def _queues(value: Any) -> tuple[str, ...]:
    try:
        return queue_names(value)
    except ConfigurationError as exc:
        raise _Invalid(str(exc)) from None


def _retention(value: Any) -> float | None:
    try:
        return parse_retention(value)
    except ConfigurationError as exc:
        raise _Invalid(str(exc).removeprefix("retention: ")) from None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database_url",
        DEFAULT_DATABASE_URL,
        _text,
        "`sqlite:///PATH` (relative to the working directory; its directory is created), "
        "`postgresql://...` or `memory://`",
    ),
    Setting("embedded_worker", True, _boolean, "run a worker in the web process while it serves"),
    Setting(
        "tracing",
        "auto",
        _tracing,
        "OpenTelemetry tracing of jobs (`quart-jobs[otel]`): `auto` when the process has set "
        "a tracer provider, `on`, or `off`",
    ),
    Setting("concurrency", _WORKER.concurrency, _integer(1), "jobs one worker runs at once"),
    Setting(
        "shutdown_timeout",
        _WORKER.shutdown_timeout,
        _number(positive=False),
        "seconds running jobs get to finish on shutdown before they go back to the queue",
    ),
    Setting(
        "max_attempts",
        DEFAULT_MAX_ATTEMPTS,
        _integer(1),
        "attempts before a job is marked failed (a task's or an enqueue's own value wins)",
    ),
    Setting(
        "max_args_bytes",
        DEFAULT_MAX_ARGS_BYTES,
        _integer(1),
        "largest JSON size of a job's arguments",
    ),
    Setting(
        "weights",
        dict(_WORKER.weights.by_priority),
        _weights,
        "shares of the priority levels when several wait, `{priority: weight}` or "
        '`"0:9,10:1"` (VIP 9 starts per regular start; `inf`: strictly first)',
    ),
    Setting(
        "queues",
        None,
        _optional(_queues),
        'the queues the worker claims from (`"a,b"` or a list; none: every queue)',
    ),
    Setting(
        "lease_seconds",
        _WORKER.lease_seconds,
        _seconds,
        "a running job's lease: a dead worker's jobs run again after it",
    ),
    Setting(
        "heartbeat_interval",
        _WORKER.heartbeat_interval,
        _optional(_seconds),
        "seconds between lease renewals (none: a third of the lease)",
    ),
    Setting(
        "poll_interval",
        _WORKER.poll_interval,
        _seconds,
        "how often an idle worker looks for jobs enqueued by other processes",
    ),
    Setting(
        "retry_base",
        _WORKER.retry.base,
        _number(positive=False),
        "retry backoff: attempt n waits a random time up to base * factor ** (n - 1) seconds",
    ),
    Setting("retry_factor", _WORKER.retry.factor, _number(positive=False), "retry backoff factor"),
    Setting(
        "retry_max_delay",
        _WORKER.retry.max_delay,
        _number(positive=False),
        "longest wait before a retry, in seconds",
    ),
    Setting(
        "retry_min_delay",
        _WORKER.retry.min_delay,
        _number(positive=False),
        "shortest wait before a retry, in seconds",
    ),
    Setting(
        "retention",
        None,
        lambda value: _retention(value),
        "finished jobs older than this are deleted while the app serves or runs workers "
        "(`7d`, `12h`, `30s`, seconds; none or `off`: kept until `quart-jobs purge`)",
    ),
    Setting(
        "sqlite_synchronous",
        None,
        _optional(_choice(SYNCHRONOUS_MODES)),
        "SQLite `synchronous`: FULL (the default) survives power loss, NORMAL a process crash",
        "sqlite",
        "synchronous",
    ),
    Setting(
        "sqlite_busy_timeout_ms",
        None,
        _optional(_integer(0)),
        "how long SQLite waits for another process's write lock, in milliseconds",
        "sqlite",
        "busy_timeout_ms",
    ),
    Setting(
        "sqlite_reader_threads",
        None,
        _optional(_integer(1)),
        "threads (each with its own connection) that serve reads",
        "sqlite",
        "reader_threads",
    ),
    Setting(
        "postgres_schema",
        None,
        _optional(_text),
        "PostgreSQL schema of the tables, created when missing (default public)",
        "postgresql",
        "schema",
    ),
    Setting(
        "postgres_pool_min_size",
        None,
        _optional(_integer(1)),
        "connections the PostgreSQL pool keeps open",
        "postgresql",
        "min_size",
    ),
    Setting(
        "postgres_pool_max_size",
        None,
        _optional(_integer(1)),
        "most connections in the PostgreSQL pool (the LISTEN connection is one more)",
        "postgresql",
        "max_size",
    ),
    Setting(
        "postgres_connect_timeout",
        None,
        _optional(_seconds),
        "seconds opening the store waits for the PostgreSQL server",
        "postgresql",
        "connect_timeout",
    ),
    Setting(
        "postgres_pool_timeout",
        None,
        _optional(_seconds),
        "seconds an operation waits for a free pooled connection",
        "postgresql",
        "pool_timeout",
    ),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

_WORKER_FIELDS = (
    "concurrency",
    "shutdown_timeout",
    "weights",
    "queues",
    "lease_seconds",
    "heartbeat_interval",
    "poll_interval",
)
_RETRY_FIELDS = {
    "retry_base": "base",
    "retry_factor": "factor",
    "retry_max_delay": "max_delay",
    "retry_min_delay": "min_delay",
}


def checked_keywords(keywords: Mapping[str, Any]) -> dict[str, Any]:
    """``QuartJobs(...)`` keywords that are settings, checked, by key (the config defaults)."""
    defaults = {s.key: s.default for s in SETTINGS}
    for name, value in keywords.items():
        setting = BY_NAME[name]
        defaults[setting.key] = setting.check(value, label=f"{name}= ({setting.key})")
    return defaults


def read(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting's value in ``config`` (missing keys: the default), checked, by name."""
    if PREFIX + "AGING_SECONDS" in config:
        log.warning(
            "%sAGING_SECONDS is no longer used and is ignored: fair scheduling replaced aging "
            "(set %sWEIGHTS to change the priority levels' shares)",
            PREFIX,
            PREFIX,
        )
    return {s.name: s.check(config.get(s.key, s.default)) for s in SETTINGS}


def url_scheme(url: str) -> str:
    scheme = url.split(":", 1)[0].lower()
    return "postgresql" if scheme == "postgres" else scheme


def backend_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The store options that apply to ``values["database_url"]``'s backend and are set."""
    scheme = url_scheme(values["database_url"])
    return {
        s.option: values[s.name]
        for s in SETTINGS
        if s.scheme == scheme and s.option is not None and values[s.name] is not None
    }


def worker_settings(values: Mapping[str, Any]) -> WorkerSettings:
    retry = RetryPolicy(**{field: values[name] for name, field in _RETRY_FIELDS.items()})
    try:
        return replace(_WORKER, retry=retry, **{name: values[name] for name in _WORKER_FIELDS})
    except ValueError as exc:  # a combination the worker refuses
        raise ConfigurationError(f"{PREFIX}*: {exc}") from None
