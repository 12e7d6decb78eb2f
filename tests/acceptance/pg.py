"""PostgreSQL helpers for acceptance tests: a fresh database per test, and the verdict."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from ..conftest import IN_CI, TEST_POSTGRES_URL
from .order_checks import verdict

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
    """(done, lost, doubled) among the accepted orders; an order that disagrees with its job
    counts as doubled (something was done that the other does not show)."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        result = verdict(lambda sql: conn.execute(sql).fetchall(), accepted)
    return result.done, result.lost, result.doubled + result.disagreeing


def finished(url: str, accepted: set[int]) -> bool:
    try:
        return outcome(url, accepted)[0] == len(accepted)
    except psycopg.OperationalError:
        return False
