"""Pausing a queue from the admin (``POST /admin/api/queues/<queue>/pause|resume``, the same
authentication and CSRF checks as retry and cancel), what ``/admin/api/stats`` and ``/metrics``
say about paused queues, and the OpenAPI document of the two routes."""

from __future__ import annotations

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_jobs import JobState, get_jobs

from .test_admin import ADMIN, log_in, place
from .test_metrics import scrape, value

NOT_THE_TOKEN = {"Authorization": "Bearer not-the-admin-token"}


async def test_pause_and_resume_answer_the_new_state_and_stats_show_what_waits(
    app: Quart, client: Client
) -> None:
    waiting = [await place(app) for _ in range(2)]
    response = await client.post("/admin/api/queues/default/pause", headers=ADMIN)
    assert response.status_code == 200
    body = await response.get_json()
    assert {k: body[k] for k in ("queue", "paused", "changed", "queued", "running", "known")} == {
        "queue": "default",
        "paused": True,
        "changed": True,
        "queued": 2,
        "running": 0,
        "known": True,
    }
    assert body["paused_at"] == pytest.approx(body["now"], abs=5)
    jobs = get_jobs(app)
    assert await jobs.paused() == {"default"}
    assert await jobs._store.claim("w", 10, jobs.clock(), 30) == []  # nothing starts
    again = await (await client.post("/admin/api/queues/default/pause", headers=ADMIN)).get_json()
    assert (again["paused"], again["changed"]) == (True, False)

    stats = await (await client.get("/admin/api/stats", headers=ADMIN)).get_json()
    (paused,) = stats["paused"]
    assert (paused["queue"], paused["queued"]) == ("default", 2)

    resumed = await client.post("/admin/api/queues/default/resume", headers=ADMIN)
    assert resumed.status_code == 200
    assert ((await resumed.get_json())["paused"], (await resumed.get_json())["changed"]) == (
        False,
        True,
    )
    stats = await (await client.get("/admin/api/stats", headers=ADMIN)).get_json()
    assert stats["paused"] == []
    claimed = await jobs._store.claim("w", 10, jobs.clock(), 30)
    assert sorted(j.id for j in claimed) == waiting


async def test_a_queue_no_job_used_can_be_paused_and_says_so(client: Client) -> None:
    body = await (await client.post("/admin/api/queues/reports/pause", headers=ADMIN)).get_json()
    assert (body["queue"], body["paused"], body["known"], body["queued"]) == (
        "reports",
        True,
        False,
        0,
    )


async def test_the_buttons_need_the_token_or_the_session_and_its_csrf_token(
    app: Quart, client: Client
) -> None:
    for action in ("pause", "resume"):
        response = await client.post(f"/admin/api/queues/default/{action}")
        assert response.status_code == 401
        assert (await response.get_json())["error"]["code"] == "unauthorized"
    stranger = await client.post("/admin/api/queues/default/pause", headers=NOT_THE_TOKEN)
    assert stranger.status_code == 401
    csrf = await log_in(client)
    forged = await client.post(
        "/admin/api/queues/default/pause", headers={"X-CSRF-Token": "0" * 64}
    )
    assert forged.status_code == 403
    cross = await client.post(
        "/admin/api/queues/default/pause",
        headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403
    assert await get_jobs(app).paused() == set()
    ok = await client.post(
        "/admin/api/queues/default/pause",
        headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-origin"},
    )
    assert ok.status_code == 200
    assert await get_jobs(app).paused() == {"default"}


@pytest.mark.parametrize("name", ["q" * 101, "%0D", "%20q", "a,b"])
async def test_a_path_that_names_no_queue_matches_no_route(
    app: Quart, client: Client, name: str
) -> None:
    """Past 100 characters, white space at an end, a comma: no queue can have that name, so the
    URL matches no route (a 404), and nothing is paused."""
    response = await client.post(f"/admin/api/queues/{name}/pause", headers=ADMIN)
    assert response.status_code == 404
    assert await get_jobs(app).paused() == set()


async def test_a_queue_name_with_a_space_inside_is_a_queue_name(app: Quart, client: Client) -> None:
    response = await client.post("/admin/api/queues/night%20reports/pause", headers=ADMIN)
    assert response.status_code == 200
    assert await get_jobs(app).paused() == {"night reports"}


async def test_the_openapi_document_describes_pause_and_resume(client: Client) -> None:
    doc = await (await client.get("/openapi.json")).get_json()
    for action in ("pause", "resume"):
        post = doc["paths"][f"/admin/api/queues/{{queue}}/{action}"]["post"]
        assert set(post["responses"]) == {"200", "400", "401", "403", "404", "429"}
        assert post["security"] == [{"adminToken": []}]
        answer = post["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer  # a documented body
    stats = doc["paths"]["/admin/api/stats"]["get"]["responses"]["200"]
    assert stats["content"]["application/json"]["schema"]


async def test_metrics_report_each_queue_paused_or_not(app: Quart, client: Client) -> None:
    jobs = get_jobs(app)
    await place(app)
    await jobs.pause("reports")
    samples = await scrape(client)
    assert value(samples, "quart_jobs_queue_paused", queue="reports") == 1.0
    assert ("quart_jobs_queue_paused", frozenset({("queue", "default")})) in samples
    assert value(samples, "quart_jobs_queue_paused", queue="default") == 0.0
    await jobs.resume("reports")
    metrics = app.extensions["quart_jobs_metrics"]
    await metrics.refresh()  # past the gauges' cache
    samples = await scrape(client)
    assert ("quart_jobs_queue_paused", frozenset({("queue", "reports")})) in samples
    assert value(samples, "quart_jobs_queue_paused", queue="reports") == 0.0
    assert (await jobs.get(1)).state is JobState.QUEUED
