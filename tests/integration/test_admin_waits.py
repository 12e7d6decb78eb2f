"""``GET /admin/api/waits``: the waits of the jobs started over the last minutes (p50 and p99 per
tier and minute) and the owners who waited longest, on an app whose jobs run on a test clock.
A test drives the store the way a worker would (claim, then finish), so every wait is known."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client
from quart_schema import QuartSchema

from quart_jobs import Jobs, JobState
from quart_jobs.admin import register_admin
from quart_jobs.backends import Outcome
from quart_jobs.backends.base import ClaimScope
from quart_jobs.backends.operator import WAIT_BOUNDS
from quart_jobs.fairness import Weights
from quart_jobs.models import Job, Lease, NewJob

from ..conftest import Clock
from .admin_app import TASK, TOKEN

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
VIP, REGULAR = 0, 10
STRICT = ClaimScope(weights=Weights({VIP: math.inf, REGULAR: 1}))


@pytest.fixture
async def jobs(tmp_path: Path, clock: Clock) -> AsyncIterator[Jobs]:
    async with Jobs(f"sqlite:///{tmp_path}/jobs.sqlite3", clock=clock) as jobs:
        yield jobs


@pytest.fixture
def client(jobs: Jobs) -> Client:
    app = Quart(__name__)
    QuartSchema(app)
    register_admin(app, jobs, token=TOKEN)
    return app.test_client()


async def put(jobs: Jobs, owner: str, priority: int = REGULAR) -> int:
    (result,) = await jobs._store.enqueue(
        [NewJob(TASK, priority=priority, owner=owner)], jobs.clock()
    )
    return result.job.id


async def start(jobs: Jobs, limit: int) -> dict[str, Job]:
    claimed = await jobs._store.claim("w", limit, jobs.clock(), 600, STRICT)
    return {str(j.owner): j for j in claimed}


async def end(jobs: Jobs, job: Job, state: JobState = JobState.SUCCEEDED) -> None:
    lease = Lease(job.id, job.lease_token or "")
    assert await jobs._store.finish([Outcome(lease, state)], jobs.clock()) == [True]


async def waits(client: Client, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/admin/api/waits{query}", headers=ADMIN)
    assert response.status_code == 200, await response.get_data(True)
    body: dict[str, Any] = await response.get_json()
    return body


def tier(body: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [t for t in body["tiers"] if t["tier"] == name]
    return found


async def test_p50_p99_per_tier_and_minute_and_the_longest_waiting_owners(
    jobs: Jobs, client: Client, clock: Clock
) -> None:
    # Two hours ago: a job that waited 500 s; out of the window.
    await put(jobs, "old")
    clock.advance(500)
    await end(jobs, (await start(jobs, 1))["old"])
    clock.advance(7200)

    t = clock()
    await put(jobs, "cat")
    await put(jobs, "dan")
    clock.advance(1)
    await put(jobs, "ann", VIP)
    clock.advance(2)
    first = await start(jobs, 3)  # ann waited 2 s, cat and dan 3 s
    assert set(first) == {"ann", "cat", "dan"}
    await end(jobs, first["ann"])
    await end(jobs, first["cat"])  # dan still runs: counted too
    await put(jobs, "bob")
    clock.advance(42)
    second = await start(jobs, 1)  # bob waited 42 s
    await end(jobs, second["bob"], JobState.FAILED)
    await put(jobs, "eve")  # still waiting: not a start, but a wait (5 s so far)
    clock.advance(5)

    body = await waits(client)
    assert body["now"] == clock()
    assert body["bucket_seconds"] == 60 and body["bounds"] == list(WAIT_BOUNDS)
    assert [x["tier"] for x in body["tiers"]] == ["vip", "regular"]
    vip, regular = tier(body, "vip"), tier(body, "regular")
    assert len(vip["buckets"]) == len(regular["buckets"]) == 60
    last = regular["buckets"][-1]
    assert last["start"] <= body["now"] < last["start"] + 60
    # Percentiles are the bounds of the buckets that hold them: 2 s is in (1, 2], 3 s in
    # (2, 5], 42 s in (20, 50].
    assert (vip["jobs"], vip["p50"], vip["p99"]) == (1, 2.0, 2.0)
    assert (regular["jobs"], regular["p50"], regular["p99"]) == (3, 5.0, 50.0)

    def minute(buckets: list[dict[str, Any]], at: float) -> dict[str, Any]:
        (found,) = [b for b in buckets if b["start"] <= at < b["start"] + 60]
        return found

    assert minute(vip["buckets"], t + 3) == {
        "start": minute(vip["buckets"], t + 3)["start"],
        "jobs": 1,
        "p50": 2.0,
        "p99": 2.0,
    }
    early, late = minute(regular["buckets"], t + 3), minute(regular["buckets"], t + 45)
    if early is late:  # both starts in one minute
        assert (early["jobs"], early["p50"], early["p99"]) == (3, 5.0, 50.0)
    else:
        assert (early["jobs"], early["p50"], early["p99"]) == (2, 5.0, 5.0)
        assert (late["jobs"], late["p50"], late["p99"]) == (1, 50.0, 50.0)
    busy = sum(b["jobs"] for b in regular["buckets"])
    assert busy == 3, "the job of two hours ago is out of the window"
    assert all(b["p50"] is None and b["p99"] is None for b in vip["buckets"] if not b["jobs"])

    assert vip["longest_waiting_owners"] == [
        {"owner": "ann", "longest_wait": 2.0, "jobs": 1, "waiting": 0}
    ]
    assert regular["longest_waiting_owners"] == [
        {"owner": "bob", "longest_wait": 42.0, "jobs": 1, "waiting": 0},
        {"owner": "eve", "longest_wait": 5.0, "jobs": 0, "waiting": 1},
        {"owner": "cat", "longest_wait": 3.0, "jobs": 1, "waiting": 0},
        {"owner": "dan", "longest_wait": 3.0, "jobs": 1, "waiting": 0},
    ]
    one = await waits(client, "?owners=1&minutes=5")
    assert len(tier(one, "regular")["buckets"]) == 5
    assert [o["owner"] for o in tier(one, "regular")["longest_waiting_owners"]] == ["bob"]


async def test_an_empty_store_answers_every_tier_with_no_percentile(client: Client) -> None:
    body = await waits(client)
    for name in ("vip", "regular"):
        found = tier(body, name)
        assert (found["jobs"], found["p50"], found["p99"]) == (0, None, None)
        assert found["longest_waiting_owners"] == []
        assert {b["jobs"] for b in found["buckets"]} == {0}


@pytest.mark.parametrize("query", ["?minutes=0", "?minutes=181", "?owners=0", "?owners=x"])
async def test_bad_queries_answer_400_json(client: Client, query: str) -> None:
    response = await client.get(f"/admin/api/waits{query}", headers=ADMIN)
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "invalid_query"


async def test_the_route_needs_the_admin_token(client: Client) -> None:
    response = await client.get("/admin/api/waits")
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "unauthorized"
    wrong = await client.get("/admin/api/waits", headers={"Authorization": "Bearer nope" * 3})
    assert wrong.status_code == 401


async def test_the_openapi_document_describes_the_route(client: Client) -> None:
    doc = await (await client.get("/openapi.json")).get_json()
    get = doc["paths"]["/admin/api/waits"]["get"]
    assert get["security"] == [{"adminToken": []}]
    assert set(get["responses"]) == {"200", "400", "401", "404", "429"}
    assert {p["name"] for p in get["parameters"]} == {"minutes", "owners"}


async def test_the_page_loads_the_wait_charts_script_from_this_origin(client: Client) -> None:
    page = await client.get("/admin/", headers=ADMIN)  # a bearer request opens a session
    html = await page.get_data(True)
    assert 'src="/admin/static/waits.js"' in html and 'id="wait-charts"' in html
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    script = await client.get("/admin/static/waits.js")
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    text = await script.get_data(True)
    assert "api/waits" in text and "innerHTML" not in text
