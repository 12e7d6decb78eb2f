"""Why jobs wait, in ``/admin/api/stats`` (``waiting``: queue -> reason -> count) and in its
OpenAPI document."""

from __future__ import annotations

from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_jobs import get_jobs
from quart_jobs.models import WorkerRecord

from .admin_app import TASK
from .test_admin import ADMIN, place


async def test_stats_say_why_jobs_wait(app: Quart, client: Client) -> None:
    jobs = get_jobs(app)
    for _ in range(2):
        await place(app)
    await jobs.options(delay=60).enqueue(TASK)
    # No worker is live: the two ready jobs are unserved; the delayed one is not due.
    stats = await (await client.get("/admin/api/stats", headers=ADMIN)).get_json()
    assert stats["waiting"] == {
        "default": {
            "not_due": {"count": 1, "at_least": False},
            "unserved": {"count": 2, "at_least": False},
        }
    }
    # A live worker serves them: they wait for nothing (a free slot), the delayed one still
    # waits; pausing the queue holds the ready ones.
    now = jobs.clock()
    await jobs._store.register_worker(
        WorkerRecord("w", "h", 1, (TASK,), None, 4, now, now, now + 90), now
    )
    stats = await (await client.get("/admin/api/stats", headers=ADMIN)).get_json()
    assert stats["waiting"] == {"default": {"not_due": {"count": 1, "at_least": False}}}
    await jobs.pause("default")
    stats = await (await client.get("/admin/api/stats", headers=ADMIN)).get_json()
    assert stats["waiting"]["default"]["paused"] == {"count": 2, "at_least": False}


async def test_the_openapi_document_describes_waiting(client: Client) -> None:
    doc = await (await client.get("/openapi.json")).get_json()
    answer = doc["paths"]["/admin/api/stats"]["get"]["responses"]["200"]
    stats = answer["content"]["application/json"]["schema"]
    assert "waiting" in stats["required"]
    waiting = stats["properties"]["waiting"]
    assert "first reason that holds it" in waiting["description"]
    count = waiting["additionalProperties"]["additionalProperties"]["$ref"]
    assert count == "#/components/schemas/WaitingCount"
    assert set(doc["components"]["schemas"]["WaitingCount"]["required"]) == {"count", "at_least"}
