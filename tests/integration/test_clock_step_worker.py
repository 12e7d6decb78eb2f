"""A worker whose clock steps back an hour still runs the jobs queued before the step."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from quart_jobs import Jobs, JobState

from . import tasks
from .conftest import FAST, wait_state

STEP = 3600.0


class SteppedClock:
    """The wall clock, moved by ``step`` seconds when a test says so."""

    def __init__(self) -> None:
        self.step = 0.0

    def __call__(self) -> float:
        return time.time() + self.step


@pytest.mark.parametrize("scheme", ["memory", "sqlite"])
async def test_jobs_queued_before_a_backward_step_run_at_once(scheme: str, tmp_path: Path) -> None:
    url = "memory://" if scheme == "memory" else f"sqlite:///{tmp_path}/jobs.sqlite3"
    clock = SteppedClock()
    jobs = Jobs(url, worker_settings=FAST, clock=clock)
    tasks.register_all(jobs)
    async with jobs:
        queued = await jobs.enqueue(tasks.record, {"x": 1})
        clock.step = -STEP
        async with jobs.run_worker():
            await wait_state(jobs, queued.id, JobState.SUCCEEDED)
            later = await jobs.enqueue(tasks.record, {"x": 2})  # enqueued after the step
            await wait_state(jobs, later.id, JobState.SUCCEEDED)
