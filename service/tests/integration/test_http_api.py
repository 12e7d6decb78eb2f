"""The order service's HTTP API through the real app lifecycle (``app.test_app()``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from order_service.app import create_app
from order_service.config import Settings
from order_service.service import EXTENSION_KEY, OrdersState
from quart_jobs import RateLimit

VIP = {"Authorization": "Bearer demo-vip-key"}
REGULAR = {"Authorization": "Bearer demo-regular-key"}
ORDER = {"items": [{"sku": "A-1", "quantity": 2}], "processing_seconds": 0}


async def wait_status(
    client: Client, order_id: int, status: str, seconds: float = 5
) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            body = await (await client.get(f"/orders/{order_id}", headers=VIP)).get_json()
            if body["status"] == status:
                return dict(body)
            await asyncio.sleep(0.02)


async def test_post_answers_202_with_the_order_and_its_location(client: Client) -> None:
    response = await client.post("/orders", json=ORDER, headers=VIP)
    assert response.status_code == 202
    body = await response.get_json()
    assert response.headers["Location"] == f"/orders/{body['id']}"
    assert body["customer"] == "alice" and body["tier"] == "vip"
    assert body["status"] == "queued" and body["items"] == ORDER["items"]
    assert body["created_at"].endswith("Z") and body["completed_at"] is None
    done = await wait_status(client, body["id"], "completed")
    assert done["attempts"] == 1 and done["started_at"] and done["completed_at"]


async def test_a_processing_order_shows_how_far_its_fulfilment_got(client: Client) -> None:
    items = [{"sku": f"A-{n}", "quantity": 1} for n in range(4)]
    order = {"items": items, "processing_seconds": 4}  # one second per item
    body = await (await client.post("/orders", json=order, headers=VIP)).get_json()
    assert body["progress"] is None  # queued
    async with asyncio.timeout(10):
        while True:
            seen = await (await client.get(f"/orders/{body['id']}", headers=VIP)).get_json()
            if seen["progress"] is not None:
                break
            await asyncio.sleep(0.05)
    assert seen["status"] == "processing" and seen["progress"] in (0.25, 0.5, 0.75), seen
    done = await wait_status(client, body["id"], "completed", seconds=10)
    assert done["progress"] is None  # shown while processing only
    spec = await (await client.get("/openapi.json")).get_json()
    assert "progress" in spec["components"]["schemas"]["Order"]["properties"]


async def test_tier_comes_from_the_customer_not_the_body(client: Client) -> None:
    response = await client.post("/orders", json={**ORDER, "tier": "vip"}, headers=REGULAR)
    assert response.status_code == 400
    body = await (await client.post("/orders", json=ORDER, headers=REGULAR)).get_json()
    assert body["tier"] == "regular"


async def test_fulfilment_is_written_once(app: Quart, client: Client) -> None:
    body = await (
        await client.post("/orders", json={**ORDER, "fail_times": 1}, headers=VIP)
    ).get_json()
    state: OrdersState = app.extensions[EXTENSION_KEY]
    done = await wait_status(client, body["id"], "completed")
    assert done["attempts"] == 2
    assert await state.require_store().fulfilment_count(body["id"]) == 1


async def test_a_customer_sees_only_its_own_orders(client: Client) -> None:
    mine = await (await client.post("/orders", json=ORDER, headers=VIP)).get_json()
    theirs = await (await client.post("/orders", json=ORDER, headers=REGULAR)).get_json()
    assert (await client.get(f"/orders/{theirs['id']}", headers=VIP)).status_code == 404
    assert (await client.post(f"/orders/{theirs['id']}/cancel", headers=VIP)).status_code == 404
    listed = await (await client.get("/orders", headers=VIP)).get_json()
    assert [o["id"] for o in listed["orders"]] == [mine["id"]]


async def test_list_is_newest_first_with_status_and_limit(client: Client) -> None:
    ids = [
        (await (await client.post("/orders", json=ORDER, headers=VIP)).get_json())["id"]
        for _ in range(3)
    ]
    for order_id in ids:
        await wait_status(client, order_id, "completed")
    listed = await (await client.get("/orders?limit=2", headers=VIP)).get_json()
    assert [o["id"] for o in listed["orders"]] == ids[::-1][:2]
    queued = await (await client.get("/orders?status=queued", headers=VIP)).get_json()
    assert queued["orders"] == []
    assert (await client.get("/orders?limit=501", headers=VIP)).status_code == 400
    assert (await client.get("/orders?status=lost", headers=VIP)).status_code == 400


async def test_cancel_a_queued_order_which_stays_readable_and_409_once_finished(
    app: Quart, client: Client
) -> None:
    state: OrdersState = app.extensions[EXTENSION_KEY]
    assert state.jobs.embedded is not None
    state.jobs.embedded.stop_claiming()  # keep orders queued
    await asyncio.sleep(0.1)
    queued = await (await client.post("/orders", json=ORDER, headers=VIP)).get_json()
    response = await client.post(f"/orders/{queued['id']}/cancel", headers=VIP)
    assert response.status_code == 200
    cancelled = await response.get_json()
    assert cancelled["status"] == "cancelled" and cancelled["completed_at"]
    again = await client.post(f"/orders/{queued['id']}/cancel", headers=VIP)
    assert again.status_code == 409
    assert (await again.get_json())["error"]["code"] == "conflict"
    read = await (await client.get(f"/orders/{queued['id']}", headers=VIP)).get_json()
    assert read["status"] == "cancelled" and read["items"] == ORDER["items"]
    order = await state.require_store().get_order(queued["id"])
    assert order is not None and order.job_id is not None
    assert (await state.jobs.get(order.job_id)).state.value == "cancelled"


async def test_there_is_no_delete_on_orders(client: Client) -> None:
    order = await (await client.post("/orders", json=ORDER, headers=VIP)).get_json()
    response = await client.delete(f"/orders/{order['id']}", headers=VIP)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"] and "DELETE" not in response.headers["Allow"]
    assert (await response.get_json())["error"]["code"] == "method_not_allowed"
    assert (await client.get(f"/orders/{order['id']}", headers=VIP)).status_code == 200


async def test_the_same_idempotency_key_with_another_body_is_422(client: Client) -> None:
    headers = {**VIP, "Idempotency-Key": "k-1"}
    first = await client.post("/orders", json=ORDER, headers=headers)
    other = await client.post("/orders", json={**ORDER, "fail_times": 1}, headers=headers)
    assert first.status_code == 202
    assert other.status_code == 422
    assert (await other.get_json())["error"]["code"] == "idempotency_key_reused"
    listed = await (await client.get("/orders", headers=VIP)).get_json()
    assert len(listed["orders"]) == 1


async def test_idempotency_key_returns_the_same_order(client: Client) -> None:
    headers = {**VIP, "Idempotency-Key": "abc-123"}
    first = await client.post("/orders", json=ORDER, headers=headers)
    second = await client.post("/orders", json=ORDER, headers=headers)
    other_customer = await client.post(
        "/orders", json=ORDER, headers={**REGULAR, "Idempotency-Key": "abc-123"}
    )
    a, b, c = [await r.get_json() for r in (first, second, other_customer)]
    assert first.status_code == second.status_code == 202
    assert a["id"] == b["id"] != c["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    listed = await (await client.get("/orders", headers=VIP)).get_json()
    assert len(listed["orders"]) == 1


@pytest.mark.parametrize(
    ("method", "path", "headers", "kwargs", "status", "code"),
    [
        ("POST", "/orders", {}, {"json": ORDER}, 401, "unauthorized"),
        ("POST", "/orders", {"Authorization": "Bearer nope"}, {"json": ORDER}, 401, "unauthorized"),
        ("POST", "/orders", VIP, {"json": {"items": []}}, 400, "invalid_request"),
        ("POST", "/orders", VIP, {"json": {**ORDER, "extra": 1}}, 400, "invalid_request"),
        (
            "POST",
            "/orders",
            VIP,
            {"data": "{", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_json",
        ),
        ("POST", "/orders", VIP, {"data": "x"}, 415, "unsupported_media_type"),
        ("GET", "/orders/999", VIP, {}, 404, "not_found"),
        ("GET", "/orders/99999999999999999999999", VIP, {}, 404, "not_found"),
        ("GET", "/nothing-here", VIP, {}, 404, "not_found"),
        ("PUT", "/orders", VIP, {}, 405, "method_not_allowed"),
    ],
)
async def test_every_error_is_json_with_its_status(
    client: Client,
    method: str,
    path: str,
    headers: dict[str, str],
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    extra_headers = kwargs.pop("headers", {})
    response = await client.open(
        path, method=method, headers={**headers, **extra_headers}, **kwargs
    )
    assert response.status_code == status
    body = await response.get_json()
    assert body["error"]["code"] == code and body["error"]["message"]
    if status == 405:
        assert "POST" in response.headers["Allow"]


async def test_a_body_over_the_limit_is_413(tmp_path: Path) -> None:
    app = create_app(
        Settings(
            database_url=f"sqlite:///{tmp_path}/o.sqlite3", orders_demo=True, max_body_bytes=100
        )
    )
    async with app.test_app():
        client = app.test_client()
        big = {"items": [{"sku": "A" * 60, "quantity": 1}] * 5}
        response = await client.post("/orders", json=big, headers=VIP)
        assert response.status_code == 413
        assert (await response.get_json())["error"]["code"] == "payload_too_large"


async def test_health_readiness_and_openapi(client: Client) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert (await ready.get_json())["checks"] == {"database": "ok", "worker": "ok"}
    spec = await (await client.get("/openapi.json")).get_json()
    assert {"/orders", "/orders/{order_id}"} <= set(spec["paths"])


@pytest.mark.parametrize("settings_overrides", [{"fulfilment_rate_limit": RateLimit.parse("1/h")}])
async def test_a_fulfilment_rate_limit_holds_a_customers_orders_not_the_others(
    app: Quart, client: Client
) -> None:
    """``FULFILMENT_RATE_LIMIT=1/h``: one of alice's orders is fulfilled, her others wait
    queued (no attempt charged) under her key, and bob's order is not held up by them."""
    alice = [
        (await (await client.post("/orders", json=ORDER, headers=VIP)).get_json())["id"]
        for _ in range(3)
    ]
    bob = (await (await client.post("/orders", json=ORDER, headers=REGULAR)).get_json())["id"]
    await wait_status(client, alice[0], "completed")
    async with asyncio.timeout(10):
        while (await (await client.get(f"/orders/{bob}", headers=REGULAR)).get_json())[
            "status"
        ] != "completed":
            await asyncio.sleep(0.02)
    jobs = app.extensions[EXTENSION_KEY].jobs
    held = [await jobs.get(job_id) for job_id in await job_ids(app, alice[1:])]
    assert [(j.state.value, j.attempts, j.rate_key) for j in held] == [
        ("queued", 0, "fulfilment:alice")
    ] * 2
    for order_id in alice[1:]:
        body = await (await client.get(f"/orders/{order_id}", headers=VIP)).get_json()
        assert body["status"] == "queued"


async def job_ids(app: Quart, order_ids: list[int]) -> list[int]:
    state: OrdersState = app.extensions[EXTENSION_KEY]
    store = state.require_store()
    ids = []
    for order_id in order_ids:
        order = await store.get_order(order_id)
        assert order is not None and order.job_id is not None
        ids.append(order.job_id)
    return ids
