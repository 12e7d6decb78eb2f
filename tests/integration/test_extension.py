"""The Quart extension through the real serving lifecycle (``app.test_app()``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner
from werkzeug.exceptions import NotFound

from quart_jobs import JobState, get_jobs

from . import ext_app


async def test_the_embedded_worker_runs_jobs_in_the_app_context(tmp_path: Path) -> None:
    app = ext_app.create_app(f"sqlite:///{tmp_path}/j.sqlite3")
    async with app.test_app():
        response = await app.test_client().post("/remember/hello")
        job_id = (await response.get_json())["id"]
        jobs = get_jobs(app)
        async with asyncio.timeout(5):
            while (await jobs.get(job_id)).state is not JobState.SUCCEEDED:
                await asyncio.sleep(0.02)
        assert (await jobs.get(job_id)).result == "ext-app"
    assert ("hello", "ext-app") in ext_app.seen


async def test_shutdown_requeues_jobs_that_outlive_the_timeout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/j.sqlite3"
    app = ext_app.create_app(url, QUART_JOBS_SHUTDOWN_TIMEOUT=0.2)
    async with app.test_app():
        jobs = get_jobs(app)
        job = await jobs.enqueue(ext_app.slow, 30)
        async with asyncio.timeout(5):
            while (await jobs.get(job.id)).state is not JobState.RUNNING:
                await asyncio.sleep(0.02)
    # The store is closed after serving; look with a fresh app.
    again = ext_app.create_app(url, QUART_JOBS_EMBEDDED_WORKER=False)
    async with again.test_app():
        back = await get_jobs(again).get(job.id)
    assert back.state is JobState.QUEUED and back.attempts == 0


async def test_without_embedded_worker_nothing_runs(tmp_path: Path) -> None:
    app = ext_app.create_app(f"sqlite:///{tmp_path}/j.sqlite3", QUART_JOBS_EMBEDDED_WORKER=False)
    async with app.test_app():
        jobs = get_jobs(app)
        job = await jobs.enqueue(ext_app.remember, 1)
        # No worker runs in this process, so the job waits for one (here: a drain).
        assert jobs.embedded is None and jobs.workers == []
        assert (await jobs.get(job.id)).state is JobState.QUEUED
        drained = await jobs.drain(timeout=5)
        assert drained.succeeded == 1 and (await jobs.get(job.id)).result == "ext-app"


async def test_a_job_not_found_in_a_route_is_a_404_as_the_app_answers_it(
    tmp_path: Path,
) -> None:
    app = ext_app.create_app(f"sqlite:///{tmp_path}/j.sqlite3", QUART_JOBS_EMBEDDED_WORKER=False)
    async with app.test_app() as served:
        client = served.test_client()
        job = await get_jobs(app).enqueue(ext_app.remember, 1)
        found = await client.get(f"/jobs/{job.id}")
        assert found.status_code == 200 and await found.get_json() == {"state": "queued"}
        for missing in (job.id + 1, 2**63):
            response = await client.get(f"/jobs/{missing}")
            assert response.status_code == 404  # Quart's own 404 page
            assert f"no job has id {missing}" in await response.get_data(as_text=True)

    json_app = ext_app.create_app(f"sqlite:///{tmp_path}/j.sqlite3")

    @json_app.errorhandler(NotFound)
    async def json_not_found(error: NotFound) -> tuple[dict[str, str], int]:
        return {"error": str(error.description)}, 404

    async with json_app.test_app() as served:
        response = await served.test_client().get(f"/jobs/{job.id + 1}")
        assert response.status_code == 404
        assert await response.get_json() == {"error": f"no job has id {job.id + 1}"}


def test_quart_jobs_commands_are_on_the_app_cli(tmp_path: Path) -> None:
    app = ext_app.create_app(f"sqlite:///{tmp_path}/j.sqlite3")
    runner = CliRunner()
    before = runner.invoke(app.cli, ["jobs", "stats", "--json"])  # no store yet: not created
    assert before.exit_code == 2 and "j.sqlite3 does not exist" in before.output
    assert not (tmp_path / "j.sqlite3").exists()
    assert runner.invoke(app.cli, ["jobs", "migrate"]).exit_code == 0
    result = runner.invoke(app.cli, ["jobs", "stats", "--json"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().startswith("{")
    missing = runner.invoke(app.cli, ["jobs", "show", "12345"])
    assert missing.exit_code == 1 and "no job has id 12345" in missing.output
