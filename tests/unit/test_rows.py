"""A stored row read back as a :class:`Job`: the claim's fast builder builds exactly what the
dataclass's own constructor builds, every field set, in the column order both SQL stores use."""

from __future__ import annotations

import dataclasses

import pytest

from quart_jobs import Job, JobState, Why
from quart_jobs.backends import rows
from quart_jobs.backends.rows import JOB_COLUMNS, job_from_row
from quart_jobs.rate import RateLimit

FULL = (
    7, "t.send", "[1, \"a\"]", "{\"k\": [2]}", 0, "failed", 2, 3, 10.0, 11.0,
    "acme", "key-7", 5.0, 12.0, 13.0, "host:1:w", "tok", 42.0,
    1, "{\"r\": 1}", "ValueError: no", "Traceback ...", "emails", "ck", 2,
    "api", 10, 60.0, "gave_up", 0.5, "half", "{\"traceparent\": \"00-ab\"}",
)  # fmt: skip


def test_a_full_row_builds_what_the_constructor_builds() -> None:
    expected = Job(
        id=7, task="t.send", args=(1, "a"), kwargs={"k": [2]}, priority=0,
        state=JobState.FAILED, attempts=2, max_attempts=3, enqueued_at=10.0, run_at=11.0,
        owner="acme", key="key-7", timeout=5.0, started_at=12.0, finished_at=13.0,
        worker="host:1:w", lease_token="tok", lease_expires_at=42.0, cancel_requested=True,
        result={"r": 1}, error="ValueError: no", traceback="Traceback ...", queue="emails",
        concurrency_key="ck", concurrency_limit=2, rate_key="api",
        rate_limit=RateLimit(10, 60.0), why=Why.GAVE_UP, progress=0.5,
        progress_message="half", trace_context="{\"traceparent\": \"00-ab\"}",
    )  # fmt: skip
    built = job_from_row(FULL)
    assert built == expected
    assert {f.name: getattr(built, f.name) for f in dataclasses.fields(Job)} == {
        f.name: getattr(expected, f.name) for f in dataclasses.fields(Job)
    }


def test_an_empty_row_defaults_as_the_constructor_does() -> None:
    row = (1, "t", "[]", "{}", 10, "queued", 0, 1, 1.0, 1.0) + (None,) * 8 + (0,) + (None,) * 3
    row += ("default",) + (None,) * 9
    assert len(row) == len(JOB_COLUMNS.split(","))
    assert job_from_row(row) == Job(1, "t", (), {}, 10, JobState.QUEUED, 0, 1, 1.0, 1.0)


def test_the_job_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        job_from_row(FULL).state = JobState.QUEUED  # type: ignore[misc]


def test_the_columns_follow_the_fields() -> None:
    """Every field has its column, in order (the rate limit's is two: limit and period)."""
    columns = [c.strip() for c in JOB_COLUMNS.split(",")]
    columns.remove("rate_period")
    assert columns == [f.name for f in dataclasses.fields(Job)]


def test_a_built_job_is_a_job_and_its_twin_has_the_same_slots() -> None:
    """Rows fill a plain twin of ``Job`` that then becomes one (same slots, same order)."""
    assert rows._Unfrozen.__slots__ == Job.__slots__
    built = job_from_row(FULL)
    assert type(built) is Job and dataclasses.is_dataclass(built)
    assert dataclasses.replace(built, state=JobState.QUEUED).state is JobState.QUEUED
    claimed = rows.job_from_claimed(
        (7, "t", "[]", "{}", 10, 1, 3, 1.0, 1.0, None, None, None, "tok")
        + (None,) * 2 + ("default",) + (None,) * 7,
        2.0,
        "w",
        32.0,
    )  # fmt: skip
    assert type(claimed) is Job
    assert (claimed.state, claimed.started_at, claimed.worker, claimed.lease_expires_at) == (
        JobState.RUNNING,
        2.0,
        "w",
        32.0,
    )
