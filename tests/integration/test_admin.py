"""The admin (dashboard page and JSON API), through ``app.test_app()`` of a small app with the
admin (:mod:`.admin_app`).

The app runs without embedded workers, so jobs stay where a test puts them; a test that needs
a job to fail or finish drives the backend the way a worker would (claim, then finish).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_jobs import Job, Jobs, JobState, QuartJobs, Why, get_jobs
from quart_jobs.admin import register_admin
from quart_jobs.backends import Outcome
from quart_jobs.backends.base import ClaimScope
from quart_jobs.fairness import Weights
from quart_jobs.models import Lease, Progress

from . import admin_app
from .admin_app import TASK, TOKEN
from .conftest import admin_url

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
COOKIE = "quart_jobs_admin"


# Tests here pick exact jobs by tier: VIP strictly first.
STRICT = ClaimScope(weights=Weights({0: math.inf, 10: 1}))


async def place(app: Quart, tier: str = "vip", *args: Any) -> int:
    """One job of the app's task in ``tier``; its id."""
    return (await admin_app.enqueue(get_jobs(app), tier, *args)).id


async def run_as_worker(app: Quart, state: JobState, limit: int = 1, **outcome: Any) -> list[Job]:
    """Claim up to ``limit`` jobs and end them in ``state``, as a worker would."""
    jobs = get_jobs(app)
    claimed = await jobs._store.claim("test-worker", limit, jobs.clock(), 30, STRICT)
    outcomes = [Outcome(Lease(j.id, j.lease_token or ""), state, **outcome) for j in claimed]
    assert await jobs._store.finish(outcomes, jobs.clock()) == [True] * len(claimed)
    return claimed


async def failed_job(app: Quart) -> int:
    job_id = await place(app, "vip", 7)
    (job,) = await run_as_worker(
        app, JobState.FAILED, error="SimulatedFailure: boom", traceback="Traceback: line 1"
    )
    assert job.id == job_id
    return job_id


async def log_in(client: Client) -> str:
    """Log in through the form; return the page's CSRF token."""
    response = await client.post("/admin/login", form={"token": TOKEN})
    assert response.status_code == 303
    page = await client.get("/admin/")
    assert page.status_code == 200
    match = re.search(r'name="qj-csrf-token" content="([0-9a-f]+)"', await page.get_data(True))
    assert match, "the dashboard embeds its CSRF token"
    return match.group(1)


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/admin/api/stats", "/admin/api/jobs", "/admin/api/jobs/1", "/admin/api/throughput"],
)
async def test_the_api_answers_401_json_without_the_token(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await client.get(path, headers={"Authorization": "Bearer not-it"})
    assert wrong.status_code == 401
    other = await client.get(path, headers={"Authorization": "Bearer demo-vip-key"})
    assert other.status_code == 401, "another bearer token of the app is not the admin token"


async def test_posts_answer_401_without_the_token(app: Quart, client: Client) -> None:
    job_id = await failed_job(app)
    for action in ("retry", "cancel"):
        response = await client.post(f"/admin/api/jobs/{job_id}/{action}")
        assert response.status_code == 401
    assert (await get_jobs(app).get(job_id)).state is JobState.FAILED


async def test_the_page_shows_a_login_form_until_logged_in(client: Client) -> None:
    response = await client.get("/admin/")
    assert response.status_code == 401
    html = await response.get_data(True)
    assert '<form method="post" action="/admin/login">' in html
    assert 'type="password"' in html
    assert "qj-csrf-token" not in html


async def test_login_sets_a_strict_httponly_session_cookie(client: Client) -> None:
    bad = await client.post("/admin/login", form={"token": "wrong"})
    assert bad.status_code == 401
    assert "not valid" in await bad.get_data(True)
    assert "Set-Cookie" not in bad.headers

    response = await client.post("/admin/login", form={"token": TOKEN})
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert TOKEN not in cookie, "the cookie never holds the token itself"
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= flags
    assert "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "secure" not in flags, "plain http: a Secure cookie would never come back"

    stats = await client.get("/admin/api/stats")  # the cookie alone authenticates
    assert stats.status_code == 200


async def test_over_https_the_cookie_is_secure(client: Client) -> None:
    response = await client.post("/admin/login", form={"token": TOKEN}, scheme="https")
    assert response.status_code == 303
    assert "; Secure" in response.headers["Set-Cookie"]


async def test_a_forged_or_stale_cookie_is_refused(app: Quart, tmp_path: Path) -> None:
    client = app.test_client(use_cookies=False)
    for value in ("x", "nonce.0000", f"abc.{'0' * 64}", ""):
        response = await client.get("/admin/api/stats", headers={"Cookie": f"{COOKIE}={value}"})
        assert response.status_code == 401, value
    # A cookie from another token (another deployment, or before a token change) is refused.
    other = admin_app.create_app(
        admin_url(tmp_path / "other"), admin_token="another-token-0123456789"
    )
    (tmp_path / "other").mkdir()
    async with other.test_app():
        login = await other.test_client().post(
            "/admin/login", form={"token": "another-token-0123456789"}
        )
        value = login.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    response = await client.get("/admin/api/stats", headers={"Cookie": f"{COOKIE}={value}"})
    assert response.status_code == 401


async def test_logout_clears_the_cookie(client: Client) -> None:
    await log_in(client)
    response = await client.post("/admin/logout")
    assert response.status_code == 303
    cleared = response.headers["Set-Cookie"]
    assert cleared.startswith(f"{COOKIE}=;") or f'{COOKIE}=""' in cleared
    assert "Max-Age=0" in cleared or "expires=Thu, 01 Jan 1970" in cleared
    assert (await client.get("/admin/api/stats")).status_code == 401


async def test_a_bearer_request_for_the_page_opens_a_session(app: Quart) -> None:
    client = app.test_client()
    page = await client.get("/admin/", headers=ADMIN)
    assert page.status_code == 200
    assert "HttpOnly" in page.headers["Set-Cookie"]
    assert (await client.get("/admin/api/stats")).status_code == 200


async def test_with_no_admin_token_the_admin_is_disabled(tmp_path: Path) -> None:
    app = admin_app.create_app(admin_url(tmp_path), admin_token=None)
    async with app.test_app():
        client = app.test_client()
        response = await client.get("/admin/api/stats", headers={"Authorization": "Bearer "})
        assert response.status_code == 404
        assert (await response.get_json())["error"]["code"] == "admin_disabled"
        page = await client.get("/admin/")
        assert page.status_code == 404 and "ADMIN_TOKEN" in await page.get_data(True)
        login = await client.post("/admin/login", form={"token": ""})
        assert login.status_code == 404


# --- cross-site request defences -----------------------------------------------------------


async def test_a_cookie_post_without_the_csrf_header_is_refused(app: Quart, client: Client) -> None:
    job_id = await failed_job(app)
    csrf = await log_in(client)
    for headers in (
        {},
        {"X-CSRF-Token": "0" * 64},
        {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"},
        {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-site"},
        {"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
        {"X-CSRF-Token": csrf, "Origin": "null"},
    ):
        response = await client.post(f"/admin/api/jobs/{job_id}/retry", headers=headers)
        assert response.status_code == 403, headers
        assert (await response.get_json())["error"]["code"] in ("csrf_failed", "cross_site")
    assert (await get_jobs(app).get(job_id)).state is JobState.FAILED

    ok = await client.post(
        f"/admin/api/jobs/{job_id}/retry",
        headers={
            "X-CSRF-Token": csrf,
            "Origin": "http://localhost",
            "Sec-Fetch-Site": "same-origin",
        },
    )
    assert ok.status_code == 200
    assert (await ok.get_json())["job"]["state"] == "queued"


async def test_bearer_posts_need_no_csrf_token(app: Quart, client: Client) -> None:
    job_id = await failed_job(app)
    response = await client.post(f"/admin/api/jobs/{job_id}/retry", headers=ADMIN)
    assert response.status_code == 200


async def test_login_from_another_site_is_refused(client: Client) -> None:
    response = await client.post(
        "/admin/login", form={"token": TOKEN}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers


# --- the JSON API --------------------------------------------------------------------------


def db_counts(tmp_path: Path) -> dict[tuple[str, int], int]:
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as conn:
        rows = conn.execute("SELECT state, priority, COUNT(*) FROM qj_jobs GROUP BY 1, 2")
        return {(state, priority): n for state, priority, n in rows}


async def test_stats_match_the_database(app: Quart, client: Client, tmp_path: Path) -> None:
    for _ in range(3):
        await place(app, "vip")
    for _ in range(4):
        await place(app, "regular")
    await run_as_worker(app, JobState.SUCCEEDED, limit=2)  # two VIP jobs
    await run_as_worker(app, JobState.FAILED, limit=1, error="E")  # the last VIP job
    await get_jobs(app).cancel(await place(app, "regular"))
    jobs = get_jobs(app)
    await jobs._store.claim("w", 1, jobs.clock(), 30, STRICT)  # one regular job running

    body = await (await client.get("/admin/api/stats", headers=ADMIN)).get_json()
    expected = db_counts(tmp_path)
    tiers = {"vip": 0, "regular": 10}
    for tier, priority in tiers.items():
        for state in JobState:
            assert body["counts"][tier][state.value] == expected.get((state.value, priority), 0)
    assert body["counts"]["vip"] == {
        "waiting": 0,
        "queued": 0,
        "running": 0,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
    }
    assert body["counts"]["regular"] == {
        "waiting": 0,
        "queued": 3,
        "running": 1,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 1,
    }
    assert body["tiers"] == ["vip", "regular"]
    assert body["totals"]["queued"] == 3 and sum(body["totals"].values()) == 8
    assert body["oldest_waiting"]["vip"] is None
    oldest = body["oldest_waiting"]["regular"]
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as conn:
        (first,) = conn.execute(
            "SELECT MIN(enqueued_at) FROM qj_jobs WHERE state = 'queued' AND priority = 10"
        ).fetchone()
    assert oldest["enqueued_at"] == pytest.approx(first)
    assert oldest["age_seconds"] == pytest.approx(body["now"] - first)


async def test_jobs_list_filters_and_pages(app: Quart, client: Client) -> None:
    vip = [await place(app, "vip") for _ in range(3)]
    regular = [await place(app, "regular") for _ in range(2)]

    async def ids(query: str) -> list[int]:
        response = await client.get(f"/admin/api/jobs{query}", headers=ADMIN)
        assert response.status_code == 200, await response.get_data()
        return [j["id"] for j in (await response.get_json())["jobs"]]

    assert await ids("") == [*reversed(regular), *reversed(vip)]
    assert await ids("?tier=vip") == list(reversed(vip))
    assert await ids("?tier=10&limit=1") == [regular[-1]]
    assert await ids(f"?before_id={regular[0]}&limit=2") == [vip[2], vip[1]]
    assert await ids(f"?task={TASK}&state=queued&limit=500") == await ids("")
    assert await ids("?task=nope") == []
    await run_as_worker(app, JobState.SUCCEEDED)
    assert await ids("?state=succeeded") == [vip[0]]


@pytest.mark.parametrize(
    "query",
    ["?state=sleeping", "?tier=gold", "?limit=0", "?limit=501", "?limit=x", "?before_id=-1"],
)
async def test_bad_list_queries_answer_400_json(client: Client, query: str) -> None:
    response = await client.get(f"/admin/api/jobs{query}", headers=ADMIN)
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "invalid_query"


async def test_job_detail_has_arguments_attempts_times_and_traceback(
    app: Quart, client: Client
) -> None:
    job_id = await failed_job(app)
    response = await client.get(f"/admin/api/jobs/{job_id}", headers=ADMIN)
    job = (await response.get_json())["job"]
    assert job["id"] == job_id and job["state"] == "failed" and job["tier"] == "vip"
    assert job["args"] == [7]
    assert (job["attempts"], job["max_attempts"]) == (1, 5)
    assert job["enqueued_at"] <= job["started_at"] <= job["finished_at"]
    assert job["error"] == "SimulatedFailure: boom"
    assert job["traceback"] == "Traceback: line 1"
    assert job["worker"] == "test-worker"
    for missing in (job_id + 1, 2**63 - 1, 2**64):
        response = await client.get(f"/admin/api/jobs/{missing}", headers=ADMIN)
        assert response.status_code == 404


async def test_job_detail_says_why_the_job_failed(app: Quart, client: Client) -> None:
    job_id = await place(app)
    await run_as_worker(
        app, JobState.FAILED, error="Fail: card declined", traceback="tb", why=Why.FAILED_BY_TASK
    )
    response = await client.get(f"/admin/api/jobs/{job_id}", headers=ADMIN)
    job = (await response.get_json())["job"]
    assert job["why"] == "failed_by_task"
    assert job["outcome"] == "failed by the task: Fail: card declined, 4 attempts left"
    listed = await client.get("/admin/api/jobs?state=failed", headers=ADMIN)
    assert [j["why"] for j in (await listed.get_json())["jobs"]] == ["failed_by_task"]
    script = await (await client.get("/admin/static/dashboard.js")).get_data(True)
    assert '["Outcome", job.outcome]' in script  # the detail drawer shows it


async def test_retry_queues_a_failed_job_and_refuses_others(app: Quart, client: Client) -> None:
    job_id = await failed_job(app)
    response = await client.post(f"/admin/api/jobs/{job_id}/retry", headers=ADMIN)
    assert response.status_code == 200
    job = (await response.get_json())["job"]
    assert (job["state"], job["attempts"], job["error"]) == ("queued", 0, None)
    assert (await get_jobs(app).get(job_id)).state is JobState.QUEUED
    again = await client.post(f"/admin/api/jobs/{job_id}/retry", headers=ADMIN)
    assert again.status_code == 409
    assert "queued" in (await again.get_json())["error"]["message"]
    missing = await client.post("/admin/api/jobs/999999/retry", headers=ADMIN)
    assert missing.status_code == 404


async def test_cancel_a_queued_a_running_and_a_finished_job(app: Quart, client: Client) -> None:
    running = await place(app)
    done = await place(app)
    queued = await place(app)
    jobs = get_jobs(app)
    claimed = await jobs._store.claim("w", 2, jobs.clock(), 30, STRICT)
    assert [j.id for j in claimed] == [running, done]
    await jobs._store.finish(
        [Outcome(Lease(done, claimed[1].lease_token or ""), JobState.SUCCEEDED)], jobs.clock()
    )

    response = await client.post(f"/admin/api/jobs/{queued}/cancel", headers=ADMIN)
    assert response.status_code == 200
    assert (await response.get_json())["job"]["state"] == "cancelled"
    response = await client.post(f"/admin/api/jobs/{running}/cancel", headers=ADMIN)
    body = (await response.get_json())["job"]
    assert response.status_code == 200
    assert body["state"] == "running" and body["cancel_requested"] is True
    response = await client.post(f"/admin/api/jobs/{done}/cancel", headers=ADMIN)
    assert response.status_code == 409
    assert (await jobs.get(done)).state is JobState.SUCCEEDED


async def test_job_json_carries_the_progress_a_running_job_reported(
    app: Quart, client: Client
) -> None:
    running = await place(app)
    jobs = get_jobs(app)
    (claimed,) = await jobs._store.claim("w", 1, jobs.clock(), 30, STRICT)
    lease = Lease(running, claimed.lease_token or "")
    await jobs._store.heartbeat([lease], jobs.clock(), 30, [(lease, Progress(0.4, "4 of 10"))])

    detail = await (await client.get(f"/admin/api/jobs/{running}", headers=ADMIN)).get_json()
    assert (detail["job"]["progress"], detail["job"]["progress_message"]) == (0.4, "4 of 10")
    listed = await (await client.get("/admin/api/jobs?state=running", headers=ADMIN)).get_json()
    assert [(j["id"], j["progress"]) for j in listed["jobs"]] == [(running, 0.4)]


async def test_throughput_counts_jobs_finished_per_minute(app: Quart, client: Client) -> None:
    for _ in range(3):
        await place(app)
    await run_as_worker(app, JobState.SUCCEEDED, limit=2)
    await run_as_worker(app, JobState.FAILED, error="E")
    response = await client.get("/admin/api/throughput", headers=ADMIN)
    body = await response.get_json()
    assert body["bucket_seconds"] == 60 and len(body["buckets"]) == 15
    last = body["buckets"][-1]
    assert last["start"] <= body["now"] < last["start"] + 60
    assert (last["succeeded"], last["failed"], last["cancelled"]) == (2, 1, 0)
    assert sum(b["succeeded"] + b["failed"] for b in body["buckets"][:-1]) == 0
    five = await client.get("/admin/api/throughput?minutes=5", headers=ADMIN)
    assert len((await five.get_json())["buckets"]) == 5
    bad = await client.get("/admin/api/throughput?minutes=0", headers=ADMIN)
    assert bad.status_code == 400


# --- the page ----------------------------------------------------------------------------


async def test_the_dashboard_page_and_its_static_files(client: Client) -> None:
    await log_in(client)
    page = await client.get("/admin/")
    html = await page.get_data(True)
    assert page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["Cache-Control"] == "no-store"
    assert 'src="/admin/static/dashboard.js"' in html
    assert "<script>" not in html, "no inline script: the CSP allows none"
    assert "http://" not in html and "https://" not in html, "no CDN: works offline"
    script = await client.get("/admin/static/dashboard.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["Content-Type"]
    assert "textContent" in await script.get_data(True)
    style = await client.get("/admin/static/dashboard.css")
    assert style.status_code == 200 and style.headers["Content-Type"].startswith("text/css")
    assert (await client.get("/admin/static/../auth.py")).status_code == 404


async def test_the_openapi_document_describes_the_admin_api(client: Client) -> None:
    doc = await (await client.get("/openapi.json")).get_json()
    paths = doc["paths"]
    for path in (
        "/admin/api/stats",
        "/admin/api/jobs",
        "/admin/api/jobs/{job_id}",
        "/admin/api/throughput",
    ):
        assert "get" in paths[path], path
        assert paths[path]["get"]["security"] == [{"adminToken": []}]
        assert "401" in paths[path]["get"]["responses"]
    for action in ("retry", "cancel"):
        post = paths[f"/admin/api/jobs/{{job_id}}/{action}"]["post"]
        assert {"200", "401", "403", "404", "409"} <= set(post["responses"])
    params = {p["name"] for p in paths["/admin/api/jobs"]["get"]["parameters"]}
    assert {"state", "tier", "task", "limit", "before_id"} <= params
    assert doc["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer"
    assert "/admin/" not in paths and "/admin/login" not in paths


async def build_report() -> None:
    return None


async def test_stats_name_the_live_workers_and_the_jobs_nobody_serves(
    app: Quart, client: Client, tmp_path: Path
) -> None:
    await place(app, "vip")
    await place(app, "regular")
    body = await (await client.get("/admin/api/stats", headers=ADMIN)).get_json()
    # No embedded worker and none elsewhere: the app's jobs wait for nobody.
    assert body["workers"] == []
    (unserved,) = body["unserved"]
    assert (unserved["queue"], unserved["task"], unserved["count"]) == (
        "default",
        TASK,
        2,
    )
    assert unserved["message"] == (
        f"2 ready jobs of task '{TASK}' in queue 'default': "
        "no running worker has that task registered"
    )

    # A real worker of another application on the same database, without the app's task.
    other = Jobs(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    other.task(name="reports.build")(build_report)
    async with other:
        worker = other.start_worker(queues=["default", "reports"])
        async with asyncio.timeout(10):
            while not (await get_jobs(app).stats()).workers:
                await asyncio.sleep(0.02)
        body = await (await client.get("/admin/api/stats", headers=ADMIN)).get_json()
        (live,) = body["workers"]
        assert live["name"] == worker.name and live["pid"] == os.getpid()
        assert (live["tasks"], live["queues"]) == (["reports.build"], ["default", "reports"])
        assert [u["task"] for u in body["unserved"]] == [TASK]
        await other.stop_worker(worker)
        body = await (await client.get("/admin/api/stats", headers=ADMIN)).get_json()
        assert body["workers"] == []  # a graceful stop leaves the registry at once

    page = await (await client.get("/admin/", headers=ADMIN)).get_data(as_text=True)
    assert 'id="unserved"' in page and 'id="workers"' in page


# --- ids and numbers in Unicode digits -----------------------------------------------------

UNICODE_ONES = ["\u0661", "\uff11", "\u0967"]


async def noop() -> None:
    pass


@pytest.mark.parametrize("one", UNICODE_ONES)
async def test_a_job_id_in_unicode_digits_names_no_job(tmp_path: Path, one: str) -> None:
    """On a plain Quart app too: the blueprint brings its own id converter."""
    app = Quart("plain")
    app.config["QUART_JOBS_DATABASE_URL"] = f"sqlite:///{tmp_path}/jobs.sqlite3"
    app.config["QUART_JOBS_EMBEDDED_WORKER"] = False
    jobs = QuartJobs(app)
    task = jobs.task(name="noop")(noop)
    register_admin(app, jobs, token=TOKEN)
    async with app.test_app():
        job_id = (await get_jobs(app).enqueue(task)).id
        assert job_id == 1
        client = app.test_client()
        for method, path in (
            ("GET", f"/admin/api/jobs/{one}"),
            ("POST", f"/admin/api/jobs/{one}/cancel"),
            ("POST", f"/admin/api/jobs/{one}/retry"),
        ):
            response = await client.open(path, method=method, headers=ADMIN)
            assert response.status_code == 404, (path, await response.get_data())
        assert (await get_jobs(app).get(1)).state is JobState.QUEUED
        ok = await client.get("/admin/api/jobs/1", headers=ADMIN)
        assert ok.status_code == 200


@pytest.mark.parametrize("one", UNICODE_ONES)
async def test_admin_query_numbers_in_unicode_digits_are_400(client: Client, one: str) -> None:
    for path, name in (
        ("/admin/api/jobs", "limit"),
        ("/admin/api/jobs", "before_id"),
        ("/admin/api/throughput", "minutes"),
    ):
        response = await client.get(path, query_string={name: one}, headers=ADMIN)
        assert response.status_code == 400, (path, await response.get_data())
        assert (await response.get_json())["error"]["code"]


# --- a Host header that is no host name ----------------------------------------------------


@pytest.mark.parametrize("host", ["a" * 64, "a..b"])
async def test_a_bad_host_on_an_app_with_the_admin_is_a_400_not_a_500(
    tmp_path: Path, host: str, caplog: pytest.LogCaptureFixture
) -> None:
    """On a plain Quart app: mounting the admin makes a bad Host a 400 on every route."""
    app = Quart("plain")
    app.config["QUART_JOBS_DATABASE_URL"] = f"sqlite:///{tmp_path}/jobs.sqlite3"
    app.config["QUART_JOBS_EMBEDDED_WORKER"] = False
    register_admin(app, QuartJobs(app), token=TOKEN)

    @app.get("/hello")
    async def hello() -> str:
        return "hello"

    async with app.test_app():
        client = app.test_client()
        for path in ("/admin/api/stats", "/hello"):
            response = await client.get(path, headers={**ADMIN, "Host": host})
            assert response.status_code == 400, (path, await response.get_data())
        assert (await client.get("/hello", headers={"Host": "localhost"})).status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
