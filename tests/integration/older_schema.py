"""A store written by an older release: its schema migrated only so far, with rows in it, for
the tests that open it with this release and check the upgrade."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from quart_jobs.backends.sqlite import schema as sqlite_schema

from ..conftest import TEST_POSTGRES_URL


def older_sqlite(path: Path, versions: int, rows: Sequence[str]) -> None:
    """A SQLite file at ``path`` with the first ``versions`` migrations and ``rows`` run."""
    with sqlite3.connect(path) as conn:
        sqlite_schema.migrate_component(conn, "quart_jobs", sqlite_schema.MIGRATIONS[:versions])
        for statement in rows:
            conn.execute(statement)


async def older_postgres(schema: str, versions: int, rows: Sequence[str]) -> None:
    """A new PostgreSQL ``schema`` with the first ``versions`` migrations and ``rows`` run."""
    import psycopg

    from quart_jobs.backends.postgres.schema import MIGRATIONS, migrate_component

    async with await psycopg.AsyncConnection.connect(
        TEST_POSTGRES_URL, autocommit=True, options=f"-csearch_path={schema}"
    ) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
        async with conn.transaction():
            await migrate_component(conn, "quart_jobs", MIGRATIONS[:versions])
            for statement in rows:
                await conn.execute(statement)
