"""The order service's settings from the environment."""

from __future__ import annotations

import os

import pytest

from order_service.config import AUTO, MAX_AUTO_PROCESSES, SettingError, Settings


def test_defaults_match_the_spec() -> None:
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///var/orders.sqlite3"
    assert (s.host, s.port, s.worker_concurrency, s.embedded_workers) == (
        "127.0.0.1",
        8000,
        4,
        True,
    )
    assert (s.shutdown_timeout, s.job_max_attempts, s.orders_demo) == (20, 5, False)
    assert s.admin_token is None and s.max_body_bytes == 1_048_576
    assert s.web_processes == AUTO
    assert (s.max_queued, s.max_queued_per_customer, s.rate_limit_per_customer) == (
        100_000,
        10_000,
        0,
    )


def test_auto_web_processes_are_the_cpus_on_sqlite_one_elsewhere() -> None:
    cpus = len(os.sched_getaffinity(0))
    assert Settings.from_env({}).processes() == min(cpus, MAX_AUTO_PROCESSES)
    assert Settings.from_env({"WEB_PROCESSES": "auto"}).processes() == min(cpus, 4)
    assert Settings.from_env({"WEB_PROCESSES": "3"}).processes() == 3
    for url in ("postgresql://127.0.0.1/test", "memory://"):
        assert Settings.from_env({"DATABASE_URL": url}).processes() == 1


def test_demo_mode_brings_the_demo_admin_token() -> None:
    assert Settings.from_env({"ORDERS_DEMO": "1"}).admin_token == "demo-admin-token"
    assert Settings.from_env({"ORDERS_DEMO": "1", "ADMIN_TOKEN": "s3" * 8}).admin_token == "s3" * 8


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"WORKER_CONCURRENCY": "-1"}, "WORKER_CONCURRENCY"),
        ({"WORKER_CONCURRENCY": "four"}, "WORKER_CONCURRENCY"),
        ({"PORT": "70000"}, "PORT"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"EMBEDDED_WORKERS": "maybe"}, "EMBEDDED_WORKERS"),
        ({"SHUTDOWN_TIMEOUT": "-2"}, "SHUTDOWN_TIMEOUT"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"SERVER": "gunicorn"}, "SERVER"),
        ({"WEB_PROCESSES": "0"}, "WEB_PROCESSES"),
        ({"WEB_PROCESSES": "many"}, "WEB_PROCESSES"),
        ({"WEB_PROCESSES": "1000"}, "WEB_PROCESSES"),
        ({"WEB_PROCESSES": "2", "DATABASE_URL": "memory://"}, "WEB_PROCESSES"),
        ({"FULFILMENT_RATE_LIMIT": "5 per second"}, "FULFILMENT_RATE_LIMIT"),
        ({"FULFILMENT_RATE_LIMIT": "0/s"}, "FULFILMENT_RATE_LIMIT"),
    ],
)
def test_a_bad_value_names_the_setting(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingError, match=name):
        Settings.from_env(env)


def test_the_fulfilment_rate_limit_is_n_per_period_or_off() -> None:
    assert Settings.from_env({}).fulfilment_rate_limit is None
    assert Settings.from_env({"FULFILMENT_RATE_LIMIT": "off"}).fulfilment_rate_limit is None
    limit = Settings.from_env({"FULFILMENT_RATE_LIMIT": "20/5s"}).fulfilment_rate_limit
    assert limit is not None and (limit.n, limit.period) == (20, 5.0)
    with pytest.raises(SettingError) as refused:
        Settings.from_env({"FULFILMENT_RATE_LIMIT": "5 per second"})
    assert str(refused.value).startswith("FULFILMENT_RATE_LIMIT='5 per second': ")
    assert "10/s" in str(refused.value)  # the message shows the format
