"""Fixtures shared by every test: backends by name, a controllable clock, the PostgreSQL URL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from quart_jobs.backends import Backend
from quart_jobs.backends.memory import MemoryBackend
from quart_jobs.backends.sqlite import SQLiteBackend

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

BACKENDS: dict[str, BackendFactory] = {
    "memory": lambda tmp: MemoryBackend(),
    "sqlite": lambda tmp: SQLiteBackend(tmp / "jobs.sqlite3", synchronous="NORMAL"),
}


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    store = BACKENDS[request.param](tmp_path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
