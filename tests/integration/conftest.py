"""The order service through its real lifecycle: one settings builder and app fixture for every
integration test module; a module adjusts them by overriding ``settings_overrides``. And the
library alone: a ``jobs`` fixture over the memory and SQLite backends with quick workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from order_service.app import create_app
from order_service.config import Settings
from quart_jobs import Jobs, JobState, RetryPolicy, WorkerSettings

from . import tasks

FAST = WorkerSettings(
    concurrency=2,
    poll_interval=0.05,
    lease_seconds=5,
    retry=RetryPolicy(base=0.01, max_delay=0.05),
    shutdown_timeout=0.5,
)


@pytest.fixture(params=["memory", "sqlite"])
async def jobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Jobs]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/jobs.sqlite3"
    j = Jobs(url, worker_settings=FAST, max_attempts=3)
    tasks.register_all(j)
    tasks.calls.clear()
    async with j:
        yield j


async def wait_state(jobs: Jobs, job_id: int, *states: JobState, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while (await jobs.get(job_id)).state not in states:
            await asyncio.sleep(0.02)


def order_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """A fresh SQLite file in ``tmp_path``, the demo customers, and quick polling."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path}/orders.sqlite3",
        "orders_demo": True,
        "admin_token": "admin-secret-0123456789",
        "poll_interval": 0.05,
        "sqlite_synchronous": "NORMAL",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def app(tmp_path: Path, settings_overrides: dict[str, Any]) -> AsyncIterator[Quart]:
    app = create_app(order_settings(tmp_path, **settings_overrides))
    async with app.test_app():
        yield app


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()
