"""The fair claim's SQL on the real databases: an older release's database upgrades with its
queued jobs claimable, and the claim reads an index range (no scan, no sort of the backlog)."""

from __future__ import annotations

from pathlib import Path

from quart_jobs.backends.shared_sql import fair
from quart_jobs.backends.sqlite import statements as sqlite_sql
from quart_jobs.backends.sqlite.backend import SQLiteBackend
from quart_jobs.models import JobState, NewJob, Tier

from ..conftest import TEST_POSTGRES_URL, Clock
from .older_schema import older_postgres, older_sqlite

# The schema versions of the release before queues and the fair claim.
OLD_SQLITE_VERSIONS = 3
OLD_POSTGRES_VERSIONS = 1
OLD_INSERT = (
    "INSERT INTO qj_jobs (task, args, kwargs, priority, state, max_attempts, enqueued_at, "
    "run_at, owner) VALUES ('t', '[]', '{{}}', {priority}, 'queued', 5, {at}, {at}, {owner})"
)


def _old_rows(at: float) -> list[str]:
    return [
        OLD_INSERT.format(priority=int(Tier.REGULAR), at=at, owner="'bob'"),
        OLD_INSERT.format(priority=int(Tier.REGULAR), at=at + 1, owner="'bob'"),
        OLD_INSERT.format(priority=int(Tier.VIP), at=at + 2, owner="'alice'"),
    ]


async def test_an_older_sqlite_database_upgrades_and_its_queued_jobs_run(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "old.sqlite3"
    older_sqlite(path, OLD_SQLITE_VERSIONS, _old_rows(clock() - 10))
    store = SQLiteBackend(path)
    await store.open()
    try:
        claimed = await store.claim("w", 10, clock(), 30)
        # The VIP job first; bob's two in their order; all in the default queue.
        assert [(j.id, j.queue) for j in claimed] == [
            (3, "default"),
            (1, "default"),
            (2, "default"),
        ]
        assert all(j.state is JobState.RUNNING for j in claimed)
    finally:
        await store.close()


async def test_the_sqlite_claim_reads_index_ranges_without_sorting_the_backlog(
    tmp_path: Path, clock: Clock
) -> None:
    store = SQLiteBackend(tmp_path / "plan.sqlite3")
    await store.open()
    try:
        await store.enqueue([NewJob("t", owner=f"o{i % 7}") for i in range(2000)], clock())
        plans = await store.read(
            lambda conn: [
                " ".join(str(r[3]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
                for sql, params in (
                    (sqlite_sql.HEADS, ("default", 10, "t", 10)),
                    (sqlite_sql.DUE, (clock(), fair.TAG_BATCH)),
                )
            ]
        )
    finally:
        await store.close()
    heads, due = plans
    assert "USING COVERING INDEX qj_jobs_fair" in heads or "USING INDEX qj_jobs_fair" in heads
    assert "qj_jobs_due" in due
    for plan in plans:
        assert "TEMP B-TREE" not in plan  # no sort of the backlog


async def test_an_older_postgres_schema_upgrades_and_the_claim_uses_the_index(
    postgres_schema: str, clock: Clock
) -> None:
    from quart_jobs.backends.postgres import statements as q
    from quart_jobs.backends.postgres.backend import PostgresBackend

    await older_postgres(postgres_schema, OLD_POSTGRES_VERSIONS, _old_rows(clock() - 10))
    store = PostgresBackend(TEST_POSTGRES_URL, schema=postgres_schema)
    await store.open()
    try:
        claimed = await store.claim("w", 10, clock(), 30)
        assert [j.id for j in claimed] == [3, 1, 2]
        await store.enqueue([NewJob("t", owner=f"o{i % 7}") for i in range(5000)], clock())
        async with store.transaction() as conn:
            await conn.execute("ANALYZE qj_jobs")
            cur = await conn.execute(
                "EXPLAIN " + q.HEADS, (["default"], [int(Tier.REGULAR)], ["t"], 10)
            )
            plan = " ".join(str(row[0]) for row in await cur.fetchall())
    finally:
        await store.close()
    assert "qj_jobs_fair" in plan
    assert "Seq Scan on qj_jobs" not in plan and "Sort" not in plan
