"""Tasks for the paused-queue acceptance test: ``quart-jobs --app tests.acceptance.pause_app:jobs
worker`` runs them on the store that ``DATABASE_URL`` names."""

from __future__ import annotations

import asyncio
import os

from quart_jobs import Jobs, WorkerSettings

jobs = Jobs(
    os.environ.get("DATABASE_URL", "memory://"),
    worker_settings=WorkerSettings(concurrency=2, poll_interval=0.5, shutdown_timeout=5),
)


@jobs.task(name="pause.email", queue="emails")
async def email(n: int) -> int:
    await asyncio.sleep(0.1)  # a call out to a mail server
    return n


@jobs.task(name="pause.mark")
async def mark(n: int) -> int:
    return n
