"""Retention settings, and one retention pass deleting only finished jobs past their age."""

from __future__ import annotations

import pytest
from tests.conftest import Clock

from order_service.config import SettingError, Settings
from quart_jobs import ConfigurationError, Jobs, JobState
from quart_jobs.backends.memory.backend import MemoryBackend
from quart_jobs.maintenance.retention import Retention, check_interval, parse_retention
from quart_jobs.models import NewJob


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("12h", 43200), ("7d", 604800), ("3600", 3600), ("1.5", 1.5)],
)
def test_durations_are_read_in_seconds(text: str, seconds: float) -> None:
    assert parse_retention(text) == seconds


@pytest.mark.parametrize("text", ["0", "off", "OFF", "none", "never"])
def test_zero_or_off_keeps_finished_jobs(text: str) -> None:
    assert parse_retention(text) is None


@pytest.mark.parametrize("text", ["soon", "-1d", "7 days", "1y"])
def test_a_bad_retention_is_a_clear_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match="retention"):
        parse_retention(text)
    with pytest.raises(SettingError, match="JOB_RETENTION"):
        Settings.from_env({"JOB_RETENTION": text})


def test_the_service_keeps_finished_jobs_seven_days_by_default() -> None:
    assert Settings.from_env({}).job_retention == 7 * 86400
    assert Settings.from_env({"JOB_RETENTION": "off"}).job_retention is None


def test_retention_is_checked_at_least_once_a_minute() -> None:
    assert check_interval(7 * 86400) == 60
    assert check_interval(30) == 15
    assert check_interval(0.5) == 1


async def test_one_pass_deletes_only_finished_jobs_past_retention(clock: Clock) -> None:
    backend = MemoryBackend()
    jobs = Jobs(backend, clock=clock, retention="1h")
    old, queued = (r.job.id for r in await backend.enqueue([NewJob("t"), NewJob("t")], clock()))
    await backend.cancel(old, clock())
    clock.advance(3599)
    recent = (await backend.enqueue([NewJob("t")], clock()))[0].job.id
    await backend.cancel(recent, clock())
    retention = Retention(backend.purge, jobs.retention or 0, clock)
    assert sum((await retention.purge_once()).values()) == 0
    clock.advance(2)
    removed = await retention.purge_once()
    assert removed[JobState.CANCELLED] == 1
    assert {j.id for j in await jobs.list()} == {queued, recent}
