"""A store of the release before retry policies gains the ``why`` column with its jobs intact:
a job failed before the upgrade reads without a reason, the next failure stores one."""

from __future__ import annotations

from pathlib import Path

import pytest

from quart_jobs.backends import Backend, Outcome
from quart_jobs.backends.postgres.schema import MIGRATIONS as POSTGRES_MIGRATIONS
from quart_jobs.backends.sqlite.backend import SQLiteBackend
from quart_jobs.backends.sqlite.schema import MIGRATIONS as SQLITE_MIGRATIONS
from quart_jobs.models import JobState, Lease, NewJob, Why
from quart_jobs.presenting import outcome_text

from ..conftest import TEST_POSTGRES_URL, Clock
from .older_schema import older_postgres, older_sqlite


def before_why(scripts: tuple[str, ...]) -> int:
    """The schema version just before the script that adds ``why``."""
    return next(n for n, script in enumerate(scripts) if "ADD COLUMN why" in script)


FAILED_BEFORE = (
    "INSERT INTO qj_jobs (task, args, kwargs, priority, state, attempts, max_attempts, "
    "enqueued_at, run_at, finished_at, error) VALUES "
    "('t', '[]', '{}', 10, 'failed', 5, 5, 1.0, 1.0, 2.0, 'ValueError: old')"
)


async def _check_upgraded(store: Backend, clock: Clock) -> None:
    old = await store.get(1)
    assert old is not None and (old.state, old.why) == (JobState.FAILED, None)
    assert outcome_text(old) == "failed: ValueError: old"
    (new,) = await store.enqueue([NewJob("t", max_attempts=1)], clock())
    (claimed,) = await store.claim("w", 1, clock(), 30)
    assert claimed.id == new.job.id
    outcome = Outcome(
        Lease(claimed.id, claimed.lease_token or ""),
        JobState.FAILED,
        error="ValueError: bad sku",
        why=Why.NOT_RETRYABLE,
    )
    assert await store.finish([outcome], clock()) == [True]
    assert (await store.get(claimed.id)).why is Why.NOT_RETRYABLE  # type: ignore[union-attr]


async def test_a_sqlite_store_of_the_release_before_gains_why(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "before.sqlite3"
    older_sqlite(path, before_why(SQLITE_MIGRATIONS), [FAILED_BEFORE])
    store = SQLiteBackend(path)
    await store.open()
    try:
        await _check_upgraded(store, clock)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_postgres_store_of_the_release_before_gains_why(
    postgres_schema: str, clock: Clock
) -> None:
    from quart_jobs.backends.postgres.backend import PostgresBackend

    await older_postgres(postgres_schema, before_why(POSTGRES_MIGRATIONS), [FAILED_BEFORE])
    store = PostgresBackend(TEST_POSTGRES_URL, schema=postgres_schema, min_size=1, max_size=2)
    await store.open()
    try:
        await _check_upgraded(store, clock)
    finally:
        await store.close()
