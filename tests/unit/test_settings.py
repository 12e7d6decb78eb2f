"""The Quart extension's settings: a constructor keyword is the default of its config key, the
app's config wins, and every worker and store option can be set either way."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart

from quart_jobs import ConfigurationError, Jobs, QuartJobs, RetryPolicy, WorkerSettings
from quart_jobs.settings import SETTINGS

#: A value for every setting, none of them its default.
CHANGED: dict[str, Any] = {
    "database_url": "sqlite:///elsewhere/jobs.sqlite3",
    "embedded_worker": False,
    "tracing": "off",
    "concurrency": 7,
    "shutdown_timeout": 3.5,
    "max_attempts": 9,
    "max_args_bytes": 1000,
    "retention": 3600.0,
    "weights": {0: 3.0, 10: 1.0},
    "queues": ("fast", "slow"),
    "lease_seconds": 12.0,
    "heartbeat_interval": 2.0,
    "poll_interval": 0.25,
    "retry_base": 0.5,
    "retry_factor": 3.0,
    "retry_max_delay": 40.0,
    "retry_min_delay": 0.1,
    "sqlite_synchronous": "NORMAL",
    "sqlite_busy_timeout_ms": 900,
    "sqlite_reader_threads": 3,
    "postgres_schema": "jobs_here",
    "postgres_pool_min_size": 3,
    "postgres_pool_max_size": 5,
    "postgres_connect_timeout": 4.0,
    "postgres_pool_timeout": 6.0,
}


def effective(jobs: QuartJobs) -> dict[str, Any]:
    """What a setting changes, read back from the objects that use it."""
    w = jobs.worker_settings
    return {
        "database_url": jobs._handle.url,
        "embedded_worker": jobs.embedded_worker,
        "tracing": jobs.tracing,
        "max_attempts": jobs.max_attempts,
        "max_args_bytes": jobs.max_args_bytes,
        "retention": jobs.retention,
        "concurrency": w.concurrency,
        "shutdown_timeout": w.shutdown_timeout,
        "weights": dict(w.weights.by_priority),
        "queues": w.queues,
        "lease_seconds": w.lease_seconds,
        "heartbeat_interval": w.heartbeat_interval,
        "poll_interval": w.poll_interval,
        "retry_base": w.retry.base,
        "retry_factor": w.retry.factor,
        "retry_max_delay": w.retry.max_delay,
        "retry_min_delay": w.retry.min_delay,
    }


def test_every_setting_is_covered_here() -> None:
    assert {s.name for s in SETTINGS} == set(CHANGED)


def test_defaults_are_those_of_jobs_and_worker_settings() -> None:
    jobs = QuartJobs(Quart(__name__))
    plain, worker = Jobs(), WorkerSettings()
    assert jobs._handle.url == plain._handle.url == "sqlite:///var/jobs.sqlite3"
    assert jobs.max_attempts == plain.max_attempts
    assert jobs.worker_settings == worker
    assert jobs.worker_settings.retry == RetryPolicy()
    assert jobs._handle.options == {}  # the backend's own defaults apply


def test_constructor_keywords_become_the_config_defaults() -> None:
    app = Quart(__name__)
    jobs = QuartJobs(app, **CHANGED)
    for setting in SETTINGS:
        assert app.config[setting.key] == CHANGED[setting.name], setting.key
    jobs.configure_from(app)  # what opening the store does: the keywords survive it
    assert effective(jobs) == {k: v for k, v in CHANGED.items() if k in effective(jobs)}
    assert jobs._handle.options == {
        "synchronous": "NORMAL",
        "busy_timeout_ms": 900,
        "reader_threads": 3,
    }


def test_the_apps_config_wins_over_the_constructor() -> None:
    app = Quart(__name__)
    app.config.update({s.key: CHANGED[s.name] for s in SETTINGS})
    app.config["QUART_JOBS_DATABASE_URL"] = "postgresql://db.example/jobs"
    jobs = QuartJobs(app, concurrency=2, postgres_schema="ignored", retry_max_delay=1.0)
    jobs.configure_from(app)
    assert jobs.worker_settings.concurrency == 7
    assert jobs.worker_settings.retry.max_delay == 40.0
    assert jobs._handle.options == {  # a PostgreSQL URL: only PostgreSQL's options
        "schema": "jobs_here",
        "min_size": 3,
        "max_size": 5,
        "connect_timeout": 4.0,
        "pool_timeout": 6.0,
    }


def test_keywords_apply_without_an_app_and_with_init_app_later() -> None:
    jobs = QuartJobs(concurrency=3, max_attempts=2)
    assert (jobs.worker_settings.concurrency, jobs.max_attempts) == (3, 2)
    app = Quart(__name__)
    app.config["QUART_JOBS_MAX_ATTEMPTS"] = "4"  # text, as from the environment
    jobs.init_app(app)
    jobs.configure_from(app)
    assert (jobs.worker_settings.concurrency, jobs.max_attempts) == (3, 4)


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("QUART_JOBS_CONCURRENCY", 0, "at least 1"),
        ("QUART_JOBS_CONCURRENCY", "many", "whole number"),
        ("QUART_JOBS_LEASE_SECONDS", -1, "above 0"),
        ("QUART_JOBS_EMBEDDED_WORKER", "perhaps", "true or false"),
        ("QUART_JOBS_SQLITE_SYNCHRONOUS", "SOMETIMES", "FULL"),
        ("QUART_JOBS_DATABASE_URL", "", "non-empty"),
    ]
    + [
        (f"QUART_JOBS_{name.upper()}", value, "finite number")
        for name in (
            "shutdown_timeout",
            "lease_seconds",
            "heartbeat_interval",
            "poll_interval",
            "retry_base",
            "retry_factor",
            "retry_max_delay",
            "retry_min_delay",
            "postgres_connect_timeout",
            "postgres_pool_timeout",
        )
        for value in (float("nan"), float("inf"), "nan", "inf", "1e400")
    ]
    + [("QUART_JOBS_WEIGHTS", {0: float("nan"), 10: 1}, "not nan")],
)
def test_a_bad_config_value_names_its_key(key: str, value: Any, said: str) -> None:
    app = Quart(__name__)
    jobs = QuartJobs(app)
    app.config[key] = value
    with pytest.raises(ConfigurationError, match=key) as caught:
        jobs.configure_from(app)
    assert said in str(caught.value)


def test_a_bad_keyword_names_the_keyword_and_its_key() -> None:
    with pytest.raises(ConfigurationError, match=r"concurrency=.*QUART_JOBS_CONCURRENCY"):
        QuartJobs(concurrency=0)


@pytest.mark.parametrize("name", ["url", "worker_settings", "backend_options"])
def test_jobs_keywords_the_settings_replace_are_refused(name: str) -> None:
    with pytest.raises(TypeError, match=f"not {name}="):
        QuartJobs(**{name: None})


def test_other_jobs_keywords_pass_through() -> None:
    jobs = QuartJobs(default_priority=0, clock=lambda: 5.0)
    assert jobs.default_priority == 0 and jobs.clock() == 5.0
