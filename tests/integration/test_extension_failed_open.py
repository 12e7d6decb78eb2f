"""One ``QuartJobs`` object and a new app per test, as the testing guide sets them up: an app
whose start-up fails (an ``on_open`` hook raises) leaves nothing open, so the next app, with
another database, writes its jobs into its own database and not into the first one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from quart import Quart
from quart.testing.app import LifespanError

from quart_jobs import QuartJobs

jobs = QuartJobs()


@jobs.task(name="failed_open.welcome")
async def welcome(email: str) -> str:
    return f"welcome, {email}"


def create_app(**config: object) -> Quart:
    app = Quart(__name__)
    app.config.update(config)
    jobs.init_app(app)

    @app.post("/signup/<email>")
    async def signup(email: str) -> tuple[dict[str, int], int]:
        job = await jobs.enqueue(welcome, email)
        return {"job": job.id}, 202

    return app


def jobs_in(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM qj_jobs").fetchone()[0])


async def test_the_next_app_writes_into_its_own_database_after_an_on_open_hook_failed(
    tmp_path: Path,
) -> None:
    broken = [True]

    async def migrate() -> None:
        if broken:
            broken.clear()
            raise RuntimeError("the application's migration failed")

    jobs.on_open.append(migrate)
    try:
        first = create_app(
            QUART_JOBS_DATABASE_URL=f"sqlite:///{tmp_path}/first.sqlite3",
            QUART_JOBS_EMBEDDED_WORKER=False,
        )
        with pytest.raises(LifespanError, match="migration failed"):
            async with first.test_app():
                pass
        second = create_app(
            QUART_JOBS_DATABASE_URL=f"sqlite:///{tmp_path}/second.sqlite3",
            QUART_JOBS_EMBEDDED_WORKER=False,
        )
        async with second.test_app() as served:
            response = await served.test_client().post("/signup/ada@example.com")
            assert response.status_code == 202
            job_id = (await response.get_json())["job"]
            assert (await jobs.get(job_id)).args == ("ada@example.com",)
    finally:
        jobs.on_open.remove(migrate)
    assert jobs_in(tmp_path / "second.sqlite3") == 1
    assert jobs_in(tmp_path / "first.sqlite3") == 0


async def test_a_failed_start_up_can_be_tried_again_on_the_same_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/jobs.sqlite3"
    failures = [RuntimeError("first try")]

    async def flaky() -> None:
        if failures:
            raise failures.pop()

    jobs.on_open.append(flaky)
    try:
        with pytest.raises(LifespanError, match="first try"):
            async with create_app(QUART_JOBS_DATABASE_URL=url).test_app():
                pass
        async with create_app(QUART_JOBS_DATABASE_URL=url).test_app() as served:
            response = await served.test_client().post("/signup/bob@example.com")
            assert response.status_code == 202
    finally:
        jobs.on_open.remove(flaky)
    assert jobs_in(tmp_path / "jobs.sqlite3") == 1
