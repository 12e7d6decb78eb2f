"""Periodic tasks in a Quart app: the embedded worker keeps the schedules, the admin API and
the dashboard show them, and ``quart jobs schedules`` lists them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner
from quart import Quart

from quart_jobs import JobState, QuartJobs, get_jobs
from quart_jobs.admin import register_admin

TOKEN = "periodic-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
moments: list[float] = []


async def hourly_report(timestamp: float) -> None:
    moments.append(timestamp)


def create_app(url: str) -> Quart:
    app = Quart("periodic-app")
    app.config.update(QUART_JOBS_DATABASE_URL=url, QUART_JOBS_POLL_INTERVAL=0.05)
    jobs = QuartJobs(app)
    jobs.periodic("0 * * * *", name="reports.hourly", timezone="Europe/Paris")(hourly_report)
    register_admin(app, jobs, token=TOKEN)
    return app


async def test_the_embedded_worker_runs_the_latest_moment_and_the_admin_shows_it(
    tmp_path: Path,
) -> None:
    moments.clear()
    app = create_app(f"sqlite:///{tmp_path}/jobs.sqlite3")
    async with app.test_app():
        jobs = get_jobs(app)
        client = app.test_client()
        async with asyncio.timeout(10):
            while not moments:
                await asyncio.sleep(0.02)
        (moment,) = moments
        assert moment % 3600 == 0 and moment <= jobs.clock() < moment + 3600
        response = await client.get("/admin/api/schedules", headers=ADMIN)
        assert response.status_code == 200
        body = await response.get_json()
        (schedule,) = body["schedules"]
        assert schedule["name"] == "reports.hourly"
        assert schedule["schedule"] == "cron 0 * * * * (Europe/Paris)"
        latest = schedule["latest"]
        assert latest["moment"] in (moment, moment + 3600)  # unless an hour began meanwhile
        assert schedule["next_run_at"] == latest["moment"] + 3600
        job = await jobs.wait(latest["id"], timeout=10)
        assert job.state is JobState.SUCCEEDED and job.kwargs == {"timestamp": latest["moment"]}
        assert (await client.get("/admin/api/schedules")).status_code == 401
        page = await (await client.get("/admin/", headers=ADMIN)).get_data(as_text=True)
        assert 'id="schedules"' in page
        script = await (await client.get("/admin/static/dashboard.js")).get_data(as_text=True)
        assert 'api("schedules")' in script


def test_quart_jobs_schedules_lists_the_apps_schedules(tmp_path: Path) -> None:
    app = create_app(f"sqlite:///{tmp_path}/jobs.sqlite3")
    result = CliRunner().invoke(app.cli, ["jobs", "schedules", "--json"])
    assert result.exit_code == 0, result.output
    (schedule,) = json.loads(result.output)
    assert (schedule["name"], schedule["cron"], schedule["timezone"]) == (
        "reports.hourly",
        "0 * * * *",
        "Europe/Paris",
    )
    table = CliRunner().invoke(app.cli, ["jobs", "schedules"])
    assert "reports.hourly" in table.output and "cron 0 * * * * (Europe/Paris)" in table.output
