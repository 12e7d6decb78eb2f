"""PostgreSQL helpers for acceptance tests: a fresh database per test, and the verdict."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from ..conftest import IN_CI, TEST_POSTGRES_URL

psycopg = pytest.importorskip("psycopg")


def _admin_conn() -> psycopg.Connection:  # type: ignore[name-defined]
    try:
        return psycopg.connect(TEST_POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {TEST_POSTGRES_URL} is not answering: {exc}")
        pytest.skip(f"PostgreSQL at {TEST_POSTGRES_URL} is not answering: {exc}")


def fresh_database() -> Iterator[str]:
    """A fresh database for one test; its URL."""
    name = f"qj_accept_{secrets.token_hex(4)}"
    with _admin_conn() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = TEST_POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _admin_conn() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def outcome(url: str, accepted: set[int]) -> tuple[int, int, int]:
    """(done, lost, doubled) among the accepted orders."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        states = dict(conn.execute("SELECT id, state FROM qj_jobs").fetchall())
        fulfilled = dict(
            conn.execute(
                "SELECT order_id, COUNT(*) FROM orders_fulfilments GROUP BY order_id"
            ).fetchall()
        )
    done = sum(1 for i in accepted if states.get(i) == "succeeded")
    lost = sum(1 for i in accepted if states.get(i) != "succeeded" or i not in fulfilled)
    doubled = sum(1 for n in fulfilled.values() if n > 1)
    return done, lost, doubled


def finished(url: str, accepted: set[int]) -> bool:
    try:
        return outcome(url, accepted)[0] == len(accepted)
    except psycopg.OperationalError:
        return False
