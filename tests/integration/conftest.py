"""The library through its real lifecycle: a ``jobs`` fixture over the memory and SQLite
backends with quick workers, and a small Quart app with the admin and metrics
(:mod:`.admin_app`) for every module that tests them; a module adjusts that app by overriding
``app_options``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_jobs import Jobs, JobState, RetryPolicy, WorkerSettings

from . import admin_app, tasks

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


def admin_url(tmp_path: Path) -> str:
    """The SQLite file of the admin app's jobs, in ``tmp_path``."""
    return f"sqlite:///{tmp_path}/jobs.sqlite3"


@pytest.fixture
def app_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def app(tmp_path: Path, app_options: dict[str, Any]) -> AsyncIterator[Quart]:
    app = admin_app.create_app(admin_url(tmp_path), **app_options)
    async with app.test_app():
        yield app


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()
