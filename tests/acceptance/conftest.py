"""Acceptance fixtures: real processes need real databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test (its URL), dropped afterwards."""
    from .pg import fresh_database

    yield from fresh_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store of a test that runs on both SQL dialects: a SQLite file in the test's
    directory, or a fresh PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/jobs.sqlite3"
        return
    from .pg import fresh_database

    yield from fresh_database()
