"""Tasks for the workflows acceptance test: ``quart-jobs --app tests.acceptance.workflows_app:jobs
worker`` runs them on the store that ``DATABASE_URL`` names; every attempt appends a line to
``RUNS_FILE`` (job id, attempt, start, end) so the test can tell that nothing ran twice."""

from __future__ import annotations

import asyncio
import os
import time

from quart_jobs import Jobs, WorkerSettings, current_job

jobs = Jobs(
    os.environ.get("DATABASE_URL", "memory://"),
    worker_settings=WorkerSettings(concurrency=4, poll_interval=0.2, lease_seconds=3),
)
jobs.max_attempts = 3


def _record(start: float) -> None:
    job = current_job()
    with open(os.environ["RUNS_FILE"], "a", encoding="utf-8") as out:
        out.write(f"{job.task} {job.id} {job.attempts} {start} {time.time()}\n")


@jobs.task(name="flow.start")
async def start(x: int) -> int:
    began = time.time()
    await asyncio.sleep(0.05)
    _record(began)
    return x


@jobs.task(name="flow.add_one")
async def add_one() -> int:
    began = time.time()
    (previous,) = await current_job().parent_results()
    await asyncio.sleep(0.2)
    _record(began)
    return int(previous) + 1


@jobs.task(name="flow.member")
async def member(n: int) -> int:
    began = time.time()
    await asyncio.sleep(0.01 + (n % 5) * 0.01)
    if n in (7, 42, 77):
        raise ValueError(f"member {n} fails for good")
    _record(began)
    return n


@jobs.task(name="flow.report")
async def report() -> dict[str, int]:
    began = time.time()
    counts = await current_job().parent_counts()
    _record(began)
    return counts


@jobs.task(name="flow.fail", max_attempts=1)
async def fail() -> None:
    raise RuntimeError("the head of the chain fails")
