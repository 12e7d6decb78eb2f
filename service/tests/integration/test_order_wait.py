"""``GET /orders/{id}?wait=S``: the answer comes once the order has ended, or after S seconds
with its current state; a bad ``wait`` is a 400 in JSON; a server that begins to stop ends the
wait."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from order_service.service import STOPPING_KEY

VIP = {"Authorization": "Bearer demo-vip-key"}
REGULAR = {"Authorization": "Bearer demo-regular-key"}
ITEMS = [{"sku": "A-1", "quantity": 2}]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # One attempt: a failing order fails at once. Long orders are put back at shutdown.
    return {"job_max_attempts": 1, "shutdown_timeout": 0.2}


async def place(client: Client, seconds: float, **extra: object) -> int:
    body = {"items": ITEMS, "processing_seconds": seconds, **extra}
    response = await client.post("/orders", json=body, headers=VIP)
    assert response.status_code == 202
    return int((await response.get_json())["id"])


async def test_wait_answers_once_the_order_is_completed(client: Client) -> None:
    order_id = await place(client, 0.2)
    response = await client.get(f"/orders/{order_id}?wait=20", headers=VIP)
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "completed" and body["completed_at"] is not None


async def test_wait_answers_a_failed_order_with_its_error(client: Client) -> None:
    order_id = await place(client, 0, fail_times=1)
    body = await (await client.get(f"/orders/{order_id}?wait=30", headers=VIP)).get_json()
    assert body["status"] == "failed" and body["error"]


async def test_wait_answers_with_the_current_state_after_the_seconds(client: Client) -> None:
    order_id = await place(client, 30)
    body = await (await client.get(f"/orders/{order_id}?wait=0.3", headers=VIP)).get_json()
    assert body["status"] in ("queued", "processing")
    zero = await client.get(f"/orders/{order_id}?wait=0", headers=VIP)
    assert (await zero.get_json())["status"] in ("queued", "processing")


@pytest.mark.parametrize("wait", ["31", "-1", "abc", "nan", "inf", ""])
async def test_a_bad_wait_is_a_400_in_json(client: Client, wait: str) -> None:
    order_id = await place(client, 0)
    response = await client.get(f"/orders/{order_id}?wait={wait}", headers=VIP)
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"]


async def test_waiting_on_another_customers_order_is_404(client: Client) -> None:
    order_id = await place(client, 0)
    response = await client.get(f"/orders/{order_id}?wait=5", headers=REGULAR)
    assert response.status_code == 404


class Stopping(asyncio.Event):
    """The server's stopping event, which tells when a request began to watch it."""

    def __init__(self) -> None:
        super().__init__()
        self.watched = asyncio.Event()

    async def wait(self) -> Literal[True]:
        self.watched.set()
        return await super().wait()


async def test_a_stopping_server_ends_the_wait(app: Quart, client: Client) -> None:
    stopping = Stopping()
    app.extensions[STOPPING_KEY] = stopping
    order_id = await place(client, 30)
    answer = asyncio.ensure_future(client.get(f"/orders/{order_id}?wait=30", headers=VIP))
    await asyncio.wait_for(stopping.watched.wait(), timeout=10)  # the request is waiting
    assert not answer.done()
    stopping.set()
    async with asyncio.timeout(10):
        response = await answer
    assert (await response.get_json())["status"] in ("queued", "processing")
