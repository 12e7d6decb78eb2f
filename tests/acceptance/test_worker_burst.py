"""``quart-jobs worker --burst`` as a real process: it runs the jobs that are ready, then exits
0 by itself; a job delayed into the future stays queued, untouched."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from quart_jobs import Jobs, JobState

from . import poison_app
from .procs import BIN

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


async def with_jobs(url: str, action: Callable[[Jobs], Awaitable[T]]) -> T:
    async with Jobs(url, max_attempts=1) as jobs:
        poison_app.register(jobs)
        return await action(jobs)


def test_worker_burst_runs_what_is_ready_then_exits_0(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/jobs.sqlite3"

    async def seed(jobs: Jobs) -> tuple[list[int], int]:
        ready = [(await jobs.enqueue("poison.done", n)).id for n in range(5)]
        later = await jobs.options(delay=3600).enqueue("poison.done", 99)
        return ready, later.id

    async def states(jobs: Jobs, ids: list[int]) -> list[JobState]:
        return [(await jobs.get(i)).state for i in ids]

    ready, later = asyncio.run(with_jobs(url, seed))
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [str(BIN / "quart-jobs"), "--app", "tests.acceptance.poison_app:jobs", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "done" in done.stderr.splitlines()[-1]
    assert " ERROR " not in done.stderr, done.stderr
    found = asyncio.run(with_jobs(url, lambda jobs: states(jobs, [*ready, later])))
    assert found == [JobState.SUCCEEDED] * 5 + [JobState.QUEUED]


def test_worker_burst_is_in_the_help() -> None:
    shown = subprocess.run(
        [str(BIN / "quart-jobs"), "worker", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--burst" in shown.stdout
