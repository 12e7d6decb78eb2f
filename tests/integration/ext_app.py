"""A small Quart app using the extension, importable by name (tasks must be)."""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Quart, current_app

from quart_jobs import QuartJobs

seen: list[Any] = []


async def remember(value: Any) -> str:
    seen.append((value, current_app.name))  # jobs run inside the app context
    return str(current_app.name)


async def slow(seconds: float) -> None:
    await asyncio.sleep(seconds)


def create_app(database_url: str, **config: Any) -> Quart:
    app = Quart("ext-app")
    app.config.update(
        QUART_JOBS_DATABASE_URL=database_url,
        QUART_JOBS_POLL_INTERVAL=0.05,
        QUART_JOBS_SQLITE_SYNCHRONOUS="NORMAL",
        **config,
    )
    jobs = QuartJobs(app)
    jobs.register(remember)
    jobs.register(slow)

    @app.post("/remember/<value>")
    async def enqueue(value: str) -> dict[str, int]:
        job = await jobs.enqueue(remember, value)
        return {"id": job.id}

    @app.get("/jobs/<int:job_id>")
    async def show(job_id: int) -> dict[str, str]:
        return {"state": (await jobs.get(job_id)).state.value}

    return app
