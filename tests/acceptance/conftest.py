"""Acceptance fixtures: real processes need real databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test (its URL), dropped afterwards."""
    from .pg import fresh_database

    yield from fresh_database()
