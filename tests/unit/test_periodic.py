"""Schedules: their moments (cron in a time zone, every N seconds) and what registration refuses."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from quart_jobs import Jobs, TaskRegistrationError

UTC = dt.UTC


def at(text: str, zone: str = "UTC") -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


async def refresh() -> None:
    return None


async def stamped(timestamp: float) -> float:
    return timestamp


async def needs_argument(customer: int) -> None:
    return None


async def takes_defaults(limit: int = 10, *args: int, **kwargs: int) -> None:
    return None


def test_cron_moments_latest_and_next() -> None:
    jobs = Jobs("memory://")
    jobs.periodic("*/5 * * * *")(refresh)
    (schedule,) = jobs.schedules
    now = at("2026-01-01T10:07:30")
    assert schedule.latest(now) == at("2026-01-01T10:05:00")
    assert schedule.next_after(now) == at("2026-01-01T10:10:00")
    on_the_moment = at("2026-01-01T10:05:00")
    assert schedule.latest(on_the_moment) == on_the_moment
    assert schedule.next_after(on_the_moment) == at("2026-01-01T10:10:00")
    assert schedule.key(on_the_moment) == f"periodic:{schedule.name}:{round(on_the_moment)}"


def test_every_moments_are_multiples_of_the_interval_since_the_epoch() -> None:
    jobs = Jobs("memory://")
    jobs.periodic(every=60, name="minutely")(refresh)
    (schedule,) = jobs.schedules
    assert schedule.name == "minutely"
    assert schedule.latest(120.0) == 120.0
    assert schedule.latest(179.9) == 120.0
    assert schedule.next_after(120.0) == 180.0
    assert schedule.description == "every 60s"


def test_cron_in_a_time_zone_follows_its_daylight_saving_time() -> None:
    jobs = Jobs("memory://")
    jobs.periodic("0 9 * * *", timezone="Europe/Paris", name="morning")(refresh)
    (schedule,) = jobs.schedules
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
    assert schedule.next_after(at("2026-01-15T00:00:00")) == at("2026-01-15T08:00:00")
    assert schedule.next_after(at("2026-07-15T00:00:00")) == at("2026-07-15T07:00:00")
    # 02:30 does not exist in Paris on 2026-03-29: cronsim runs it at the end of the gap.
    jobs.periodic("30 2 * * *", timezone="Europe/Paris", name="night")(refresh)
    night = next(s for s in jobs.schedules if s.name == "night")
    assert night.next_after(at("2026-03-29T00:00:00")) == at("2026-03-29T03:00:00", "Europe/Paris")


def test_the_timestamp_keyword_is_passed_only_when_accepted() -> None:
    jobs = Jobs("memory://")
    jobs.periodic(every=10)(refresh)
    jobs.periodic(every=10)(stamped)
    passes = {s.task.func: s.passes_timestamp for s in jobs.schedules}
    assert passes == {refresh: False, stamped: True}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of cron"),
        ({"cron": "* * * * *", "every": 5}, "exactly one of cron"),
        ({"every": 0.5}, "at least 1"),
        ({"every": "10"}, "at least 1"),
        ({"every": float("inf")}, "finite"),
        ({"cron": "* * * *"}, "5 fields"),
        ({"cron": "0 * * * * *"}, "5 fields"),
        ({"cron": "61 * * * *"}, "not valid"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "time zone"),
    ],
)
def test_bad_schedules_are_refused_with_the_reason(kwargs: dict[str, object], message: str) -> None:
    jobs = Jobs("memory://")
    with pytest.raises(TaskRegistrationError, match=message):
        jobs.periodic(**kwargs)(refresh)  # type: ignore[arg-type]
    assert jobs.schedules == [] and jobs.registry.names() == []


def test_a_function_with_a_required_argument_is_refused() -> None:
    jobs = Jobs("memory://")
    with pytest.raises(TaskRegistrationError, match="needs customer"):
        jobs.periodic(every=10)(needs_argument)
    assert jobs.registry.names() == []
    jobs.periodic(every=10)(takes_defaults)
    assert [s.name for s in jobs.schedules] == [f"{__name__}.takes_defaults"]


def test_schedule_json_names_the_next_run() -> None:
    jobs = Jobs("memory://")
    jobs.periodic("0 * * * *", queue="maintenance", priority="vip")(refresh)
    (schedule,) = jobs.schedules
    data = schedule.as_dict(at("2026-01-01T10:07:30"))
    assert data["next_run"] == "2026-01-01T11:00:00+00:00"
    assert data["next_run_at"] == at("2026-01-01T11:00:00")
    assert (data["cron"], data["every"], data["queue"], data["priority"]) == (
        "0 * * * *",
        None,
        "maintenance",
        0,
    )
