"""A new project's first steps through the real serving lifecycle: ``QuartJobs(app)`` with its
defaults in an empty directory, and constructor options that reach the store and the worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from quart import Quart

from quart_jobs import JobState, QuartJobs

from ..conftest import TEST_POSTGRES_URL

seen: list[str] = []


async def greet(name: str) -> str:
    seen.append(name)
    return f"hello {name}"


async def wait_for(jobs: QuartJobs, job_id: int, state: JobState) -> None:
    async with asyncio.timeout(10):
        while (await jobs.get(job_id)).state is not state:
            await asyncio.sleep(0.02)


async def test_quart_jobs_with_its_defaults_works_in_an_empty_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no var/ here
    app = Quart(__name__)
    jobs = QuartJobs(app, poll_interval=0.05)
    jobs.register(greet)
    async with app.test_app():
        job = await jobs.enqueue(greet, "new user")
        await wait_for(jobs, job.id, JobState.SUCCEEDED)
        assert (await jobs.get(job.id)).result == "hello new user"
    assert (tmp_path / "var" / "jobs.sqlite3").is_file()
    assert "new user" in seen


async def test_constructor_options_are_not_replaced_at_start(tmp_path: Path) -> None:
    app = Quart(__name__)
    url = f"sqlite:///{tmp_path}/deep/er/mine.sqlite3"
    jobs = QuartJobs(app, database_url=url, embedded_worker=False, max_attempts=2)
    jobs.register(greet)
    async with app.test_app():
        job = await jobs.enqueue(greet, "x")
        assert job.max_attempts == 2
        assert jobs.embedded is None
    assert (tmp_path / "deep" / "er" / "mine.sqlite3").is_file()


@pytest.mark.postgres
async def test_a_postgres_schema_given_to_the_constructor_holds_the_tables(
    postgres_schema: str,
) -> None:
    app = Quart(__name__)
    jobs = QuartJobs(
        app,
        database_url=TEST_POSTGRES_URL,
        postgres_schema=postgres_schema,
        postgres_pool_min_size=1,
        postgres_pool_max_size=2,
        poll_interval=0.05,
    )
    jobs.register(greet)
    async with app.test_app():
        job = await jobs.enqueue(greet, "pg")
        await wait_for(jobs, job.id, JobState.SUCCEEDED)
    async with await psycopg.AsyncConnection.connect(TEST_POSTGRES_URL) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = %s AND table_name = 'qj_jobs'",
            (postgres_schema,),
        )
        assert await cursor.fetchone() == (1,)
