"""A ``quart-jobs worker`` app for tests that read the worker's stderr: one task, leases of
3 s (a heartbeat, and the checks that ride on it, every second), and the check for ready jobs
that no worker serves every second instead of every minute (a module constant, shortened
here so a test need not wait two minutes). Logging is left as the library sets it up."""

from __future__ import annotations

import os

import quart_jobs.maintenance.unserved_check
from quart_jobs import Jobs, WorkerSettings

quart_jobs.maintenance.unserved_check.CHECK_EVERY = 1.0

jobs = Jobs(os.environ["DATABASE_URL"], worker_settings=WorkerSettings(lease_seconds=3))


@jobs.task(name="watched.noop")
async def noop() -> None:
    return None
