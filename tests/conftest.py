"""Fixtures shared by every test: backends by name, a controllable clock, the PostgreSQL URL."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from quart_jobs.backends import Backend
from quart_jobs.backends.memory.backend import MemoryBackend
from quart_jobs.backends.sqlite.backend import SQLiteBackend

TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


BackendFactory = Callable[[Path], Backend]


def postgres_unreachable() -> str | None:
    """Why the PostgreSQL server at ``TEST_POSTGRES_URL`` cannot be used, or ``None``."""
    if _PG_PROBE:
        return _PG_PROBE[0]
    import psycopg

    try:
        psycopg.connect(TEST_POSTGRES_URL, connect_timeout=2).close()
    except psycopg.Error as exc:
        _PG_PROBE.append(
            f"no PostgreSQL at TEST_POSTGRES_URL={TEST_POSTGRES_URL}: {' '.join(str(exc).split())}"
        )
    else:
        _PG_PROBE.append(None)
    return _PG_PROBE[0]


_PG_PROBE: list[str | None] = []


def require_postgres() -> None:
    """Skip the test when no server answers, with the reason; under ``CI=true`` fail it."""
    reason = postgres_unreachable()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
    pytest.skip(reason)


def new_schema_name() -> str:
    """A fresh PostgreSQL schema name: each test gets tables of its own."""
    return f"qj_test_{secrets.token_hex(6)}"


async def drop_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    async with await psycopg.AsyncConnection.connect(TEST_POSTGRES_URL, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


def _postgres(tmp: Path) -> Backend:
    require_postgres()
    from quart_jobs.backends.postgres.backend import PostgresBackend

    return PostgresBackend(TEST_POSTGRES_URL, schema=new_schema_name(), min_size=1, max_size=8)


BACKENDS: dict[str, BackendFactory] = {
    "memory": lambda tmp: MemoryBackend(),
    "sqlite": lambda tmp: SQLiteBackend(tmp / "jobs.sqlite3", synchronous="NORMAL"),
    "postgresql": _postgres,
}
_MARKS = {"postgresql": [pytest.mark.postgres]}


@pytest.fixture(
    params=[pytest.param(name, marks=_MARKS.get(name, ())) for name in sorted(BACKENDS)]
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    store = BACKENDS[request.param](tmp_path)
    try:
        await store.open()
        yield store
    finally:
        await store.close()
        schema = getattr(store, "schema", None)
        if store.scheme == "postgresql" and isinstance(schema, str):
            await drop_schema(schema)


@pytest.fixture
async def postgres_schema() -> AsyncIterator[str]:
    """A fresh schema name at ``TEST_POSTGRES_URL`` (skips without a server), dropped after."""
    require_postgres()
    schema = new_schema_name()
    try:
        yield schema
    finally:
        await drop_schema(schema)
