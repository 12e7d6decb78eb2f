"""Fewer indexes per state change: a database of the release before drops the
pre-fairness ``qj_jobs_claim`` and ``qj_jobs_ready`` with its jobs intact, and the queued gauges
and ``next_run_at`` read the partial indexes that remain (no scan of the table)."""

from __future__ import annotations

from pathlib import Path

from quart_jobs.backends.sqlite import statements as sqlite_sql
from quart_jobs.backends.sqlite.backend import SQLiteBackend
from quart_jobs.models import JobState, NewJob, Stats, Tier

from ..conftest import TEST_POSTGRES_URL, Clock
from .older_schema import older_postgres, older_sqlite

# The schema versions of the release before this change.
BEFORE_SQLITE = 4
BEFORE_POSTGRES = 2
# A VIP job due but not yet tagged and a job delayed for an hour; the test enqueues a third
# (ready, so tagged) after the upgrade.
ROWS = (
    "INSERT INTO qj_jobs (task, args, kwargs, priority, state, max_attempts, enqueued_at, "
    "run_at, owner) VALUES "
    "('t', '[]', '{{}}', {vip}, 'queued', 5, {at}, {at}, 'alice'), "
    "('t', '[]', '{{}}', {regular}, 'queued', 5, {at}, {later}, 'bob')"
)
READY = NewJob("t", priority=int(Tier.REGULAR), owner="bob")
GONE = {"qj_jobs_claim", "qj_jobs_ready"}


def _rows(at: float) -> str:
    return ROWS.format(regular=int(Tier.REGULAR), vip=int(Tier.VIP), at=at, later=at + 3600)


def _counts(stats: Stats) -> dict[tuple[JobState, int], int]:
    return dict(stats.counts)


async def test_a_sqlite_database_of_the_release_before_drops_the_old_indexes(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "before.sqlite3"
    older_sqlite(path, BEFORE_SQLITE, [_rows(clock() - 10)])
    store = SQLiteBackend(path)
    await store.open()
    try:
        await store.enqueue([READY], clock())
        names, due_columns, plans = await store.read(
            lambda conn: (
                {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")},
                [r[2] for r in conn.execute("PRAGMA index_info(qj_jobs_due)")],
                [
                    [str(r[3]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
                    for sql in (sqlite_sql.QUEUED_GAUGES, sqlite_sql.NEXT_RUN_AT)
                ],
            )
        )
        gauges = await store.operator.queue_gauges()
        claimed = await store.claim("w", 10, clock(), 30)
    finally:
        await store.close()
    assert not names & GONE
    assert {"qj_jobs_fair", "qj_jobs_due", "qj_jobs_state"} <= names
    assert due_columns == ["run_at", "id", "priority"]
    assert _counts(gauges) == {
        (JobState.QUEUED, int(Tier.REGULAR)): 2,
        (JobState.QUEUED, int(Tier.VIP)): 1,
    }
    for plan in plans:
        reads = [step for step in plan if step.startswith(("SCAN qj_jobs", "SEARCH qj_jobs"))]
        assert reads and all("USING" in step and "INDEX qj_jobs_" in step for step in reads)
    assert [j.id for j in claimed] == [1, 3]  # the VIP job first; the delayed one waits


async def test_a_postgres_schema_of_the_release_before_drops_the_old_indexes(
    postgres_schema: str, clock: Clock
) -> None:
    from quart_jobs.backends.postgres import statements as postgres_sql
    from quart_jobs.backends.postgres.backend import PostgresBackend

    await older_postgres(postgres_schema, BEFORE_POSTGRES, [_rows(clock() - 10)])
    store = PostgresBackend(TEST_POSTGRES_URL, schema=postgres_schema)
    await store.open()
    try:
        await store.enqueue([READY], clock())
        async with store.transaction() as conn:
            cur = await conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (postgres_schema,)
            )
            names = {str(r[0]) for r in await cur.fetchall()}
            # Three rows: a scan is cheapest; without it, the partial indexes must serve both.
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = ""
            for statement in (postgres_sql.QUEUED_GAUGES, postgres_sql.NEXT_RUN_AT):
                cur = await conn.execute("EXPLAIN " + statement)
                plan += " ".join(str(r[0]) for r in await cur.fetchall())
        gauges = await store.operator.queue_gauges()
        claimed = await store.claim("w", 10, clock(), 30)
    finally:
        await store.close()
    assert not names & GONE
    assert {"qj_jobs_fair", "qj_jobs_due", "qj_jobs_state"} <= names
    assert _counts(gauges) == {
        (JobState.QUEUED, int(Tier.REGULAR)): 2,
        (JobState.QUEUED, int(Tier.VIP)): 1,
    }
    assert "qj_jobs_fair" in plan and "qj_jobs_due" in plan
    assert "Seq Scan" not in plan
    assert [j.id for j in claimed] == [1, 3]
