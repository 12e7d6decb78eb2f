"""A small Quart app with the library's admin and metrics, for their tests: one task
(``work.run``) that can take time and fail its first attempts, enqueued in either tier.

``create_app(database_url, ...)`` builds one for a test; ``serve()`` builds one from the
environment (``ADMIN_APP_DATABASE_URL``, ``ADMIN_APP_TOKEN``, ``ADMIN_APP_MAX_ATTEMPTS``,
``ADMIN_APP_EMBEDDED_WORKER``) for a real server process:
``hypercorn 'tests.integration.admin_app:serve()'``.
"""

from __future__ import annotations

import asyncio
import os

from quart import Quart
from quart_schema import QuartSchema

from quart_jobs import Job, Jobs, QuartJobs, Tier, current_job
from quart_jobs.admin import register_admin
from quart_jobs.metrics import register_metrics

TASK = "work.run"
#: A task that reports its progress step by step (the dashboard's progress bar).
STEPS_TASK = "work.steps"
TOKEN = "s3cret-admin-token"


class SimulatedFailure(RuntimeError):
    """Raised by the first ``fail_times`` attempts of a ``work.run`` job."""


async def run(n: int = 0, seconds: float = 0, fail_times: int = 0) -> int:
    """Take ``seconds``; fail while the attempt is at most ``fail_times``; return ``n``."""
    await asyncio.sleep(seconds)
    attempt = current_job().attempts
    if attempt <= fail_times:
        raise SimulatedFailure(f"simulated failure (attempt {attempt} of {fail_times} set)")
    return n


async def steps(count: int = 4, seconds: float = 1.0) -> int:
    """``count`` steps of ``seconds`` each, reporting how far it got after each one."""
    for done in range(1, count + 1):
        await asyncio.sleep(seconds)
        current_job().progress(done / count, f"{done} of {count} steps")
    return count


def create_app(
    database_url: str,
    *,
    admin_token: str | None = TOKEN,
    metrics_token: str | None = None,
    trusted_proxies: str | None = None,
    embedded_worker: bool = False,
    max_attempts: int = 5,
) -> Quart:
    app = Quart("admin_app")
    app.config.update(
        {
            "QUART_JOBS_DATABASE_URL": database_url,
            "QUART_JOBS_EMBEDDED_WORKER": embedded_worker,
            "QUART_JOBS_MAX_ATTEMPTS": max_attempts,
            "QUART_JOBS_POLL_INTERVAL": 0.05,
            "QUART_JOBS_SQLITE_SYNCHRONOUS": "NORMAL",
        }
    )
    QuartSchema(app)  # the admin documents its API in the app's OpenAPI document
    jobs = QuartJobs()
    jobs.register(run, name=TASK)
    jobs.register(steps, name=STEPS_TASK)
    jobs.init_app(app)
    register_admin(app, jobs, token=admin_token, trusted_proxies=trusted_proxies or ())
    register_metrics(app, jobs, token=metrics_token)
    return app


async def enqueue(jobs: Jobs, tier: Tier | str = Tier.VIP, *args: object) -> Job:
    """One ``work.run(*args)`` job in ``tier``."""
    return await jobs.options(priority=tier).enqueue(TASK, *args)


def serve() -> Quart:
    """The app of a server process, configured by ``ADMIN_APP_*`` variables; with an embedded
    worker unless ``ADMIN_APP_EMBEDDED_WORKER=0``."""
    return create_app(
        os.environ["ADMIN_APP_DATABASE_URL"],
        admin_token=os.environ.get("ADMIN_APP_TOKEN", TOKEN),
        embedded_worker=os.environ.get("ADMIN_APP_EMBEDDED_WORKER", "1") != "0",
        max_attempts=int(os.environ.get("ADMIN_APP_MAX_ATTEMPTS", "5")),
    )
