"""Orders are records: they outlive their jobs (retention, purge), follow their job's outcome
(even one recorded without an event), refuse an admin retry once cancelled, and a database of
the release where orders were jobs is upgraded without losing or changing one."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client
from tests.conftest import TEST_POSTGRES_URL

from order_service import orders
from order_service.app import create_app
from order_service.service import EXTENSION_KEY, OrdersState
from order_service.store_postgres import MIGRATIONS as PG_ORDER_MIGRATIONS
from order_service.store_postgres import PostgresOrdersStore
from order_service.store_sqlite import MIGRATIONS as SQLITE_ORDER_MIGRATIONS
from quart_jobs import JobState, get_jobs
from quart_jobs.backends import Backend, Outcome
from quart_jobs.backends.base import ClaimScope
from quart_jobs.backends.postgres.backend import PostgresBackend
from quart_jobs.backends.postgres.schema import migrate_component as pg_migrate_component
from quart_jobs.backends.sqlite.backend import SQLiteBackend
from quart_jobs.backends.sqlite.schema import migrate_component
from quart_jobs.fairness import Weights
from quart_jobs.models import JobFilter, Lease, NewJob, Tier

from .conftest import order_settings

VIP = {"Authorization": "Bearer demo-vip-key"}
ADMIN = {"Authorization": "Bearer admin-secret-0123456789"}
ORDER = {"items": [{"sku": "A-1", "quantity": 2}], "processing_seconds": 0}


def state_of(app: Quart) -> OrdersState:
    state: OrdersState = app.extensions[EXTENSION_KEY]
    return state


async def wait_status(client: Client, order_id: int, status: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            body = await (await client.get(f"/orders/{order_id}", headers=VIP)).get_json()
            if body["status"] == status:
                return dict(body)
            await asyncio.sleep(0.02)


async def test_orders_outlive_a_purge_of_every_finished_job(client: Client, app: Quart) -> None:
    keyed = {**VIP, "Idempotency-Key": "old-key"}
    first = await (await client.post("/orders", json=ORDER, headers=keyed)).get_json()
    failing = {**ORDER, "fail_times": 10}
    others = [
        await (await client.post("/orders", json=body, headers=VIP)).get_json()
        for body in (ORDER, failing)
    ]
    await wait_status(client, first["id"], "completed")
    await wait_status(client, others[0]["id"], "completed")
    jobs = get_jobs(app)
    failed = await state_of(app).require_store().get_order(others[1]["id"])
    assert failed is not None and failed.job_id is not None
    await jobs.cancel(failed.job_id)  # let it end now rather than after its retries
    await wait_status(client, others[1]["id"], "cancelled")
    before = await (await client.get("/orders", headers=VIP)).get_json()

    removed = await jobs.purge(jobs.clock() + 1)
    assert sum(removed.values()) == 3 and await jobs.list() == []

    after = await (await client.get("/orders", headers=VIP)).get_json()
    assert after == before
    read = await (await client.get(f"/orders/{first['id']}", headers=VIP)).get_json()
    assert read["status"] == "completed" and read["items"] == ORDER["items"]
    replay = await client.post("/orders", json=ORDER, headers=keyed)
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    assert (await replay.get_json())["id"] == first["id"]
    assert await jobs.list() == []  # the replay created no job


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"job_retention": 1.0}


async def test_job_retention_deletes_finished_jobs_but_never_an_order(
    client: Client, app: Quart
) -> None:
    order = await (await client.post("/orders", json=ORDER, headers=VIP)).get_json()
    await wait_status(client, order["id"], "completed")
    jobs = get_jobs(app)
    async with asyncio.timeout(10):
        while await jobs.list():
            await asyncio.sleep(0.1)
    read = await (await client.get(f"/orders/{order['id']}", headers=VIP)).get_json()
    assert read["status"] == "completed" and read["attempts"] == 1


async def test_an_order_follows_an_outcome_recorded_without_an_event(tmp_path: Path) -> None:
    """A worker that died with the job: its lease expires and the job fails for good in
    another process's recovery, which knows nothing of orders; reconciliation catches up."""
    app = create_app(order_settings(tmp_path, embedded_workers=False, job_max_attempts=1))
    async with app.test_app():
        client = app.test_client()
        order = await (await client.post("/orders", json=ORDER, headers=VIP)).get_json()
        jobs = get_jobs(app)
        (job,) = await jobs._store.claim("dead-worker", 1, jobs.clock(), 0.01)
        await jobs.transaction(orders.start(order["id"], job))
        assert await jobs._store.recover_expired(jobs.clock() + 1) == 1  # its lease ran out
        assert (await client.get(f"/orders/{order['id']}", headers=VIP)).status_code == 200
        reconciler = state_of(app).reconciler
        assert reconciler is not None
        assert await reconciler.processing() == 1
        read = await (await client.get(f"/orders/{order['id']}", headers=VIP)).get_json()
        assert read["status"] == "failed" and "lease expired" in read["error"]


async def test_the_admin_cannot_retry_a_cancelled_order(tmp_path: Path) -> None:
    app = create_app(order_settings(tmp_path, embedded_workers=False))
    async with app.test_app():
        client = app.test_client()
        order = await (await client.post("/orders", json=ORDER, headers=VIP)).get_json()
        assert (await client.post(f"/orders/{order['id']}/cancel", headers=VIP)).status_code == 200
        record = await state_of(app).require_store().get_order(order["id"])
        assert record is not None
        response = await client.post(f"/admin/api/jobs/{record.job_id}/retry", headers=ADMIN)
        assert response.status_code == 409
        error = (await response.get_json())["error"]
        assert error["code"] == "retry_refused" and "cancellation is final" in error["message"]
        assert (await get_jobs(app).get(record.job_id or 0)).state is JobState.CANCELLED


# --- upgrade from the release where an order was its job --------------------------------------

OLD_ORDERS = [
    # (customer, tier, items, idempotency key, end state)
    ("alice", "vip", [{"sku": "A-1", "quantity": 1}], "key-1", JobState.SUCCEEDED),
    ("alice", "vip", [{"sku": "B-2", "quantity": 3}], None, JobState.FAILED),
    ("bob", "regular", [{"sku": "C-3", "quantity": 2}], None, JobState.CANCELLED),
    ("bob", "regular", [{"sku": "D-4", "quantity": 5}], "key-4", JobState.QUEUED),
]


async def write_old_orders(backend: Backend) -> list[int]:
    """Orders as the previous release stored them: the job's arguments are the order."""
    now = 1_700_000_000.0
    ids = []
    for n, (customer, tier, items, key, _) in enumerate(OLD_ORDERS):
        order = {
            "customer": customer,
            "tier": tier,
            "items": items,
            "processing_seconds": 0.5,
            "fail_times": 0,
        }
        new = NewJob(
            task=orders.TASK,
            args=(order,),
            priority=Tier.parse(tier),
            owner=customer,
            key=None if key is None else f"order:{n}:{key}",
        )
        (result,) = await backend.enqueue([new], now + n)
        ids.append(result.job.id)
    vip_first = ClaimScope(weights=Weights({int(Tier.VIP): math.inf}))
    claimed = await backend.claim("old", 2, now + 10, 30, vip_first)
    await backend.finish(
        [
            Outcome(Lease(claimed[0].id, claimed[0].lease_token or ""), JobState.SUCCEEDED),
            Outcome(Lease(claimed[1].id, claimed[1].lease_token or ""), JobState.FAILED, error="x"),
        ],
        now + 11,
    )
    await backend.cancel(ids[2], now + 12)
    return ids


def check_upgraded(found: list[orders.Order | None], ids: list[int]) -> None:
    statuses = ["completed", "failed", "cancelled", "queued"]
    for order, job_id, old, status in zip(found, ids, OLD_ORDERS, statuses, strict=True):
        assert order is not None
        assert (order.id, order.job_id) == (job_id, job_id)
        assert (order.customer, order.tier, order.items) == old[:3]
        assert order.idempotency_key == old[3] and order.status == status
        assert order.processing_seconds == 0.5


async def test_a_sqlite_database_of_the_previous_release_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "orders.sqlite3"
    old = SQLiteBackend(path, synchronous="NORMAL")
    await old.open()
    await old.write(lambda conn: migrate_component(conn, "orders", SQLITE_ORDER_MIGRATIONS[:1]))
    ids = await write_old_orders(old)
    await old.write(
        lambda conn: conn.execute(
            "INSERT INTO orders_fulfilments VALUES (?, 1, 'old', 1700000011)", (ids[0],)
        )
    )
    await old.close()

    # Retention off: the old jobs finished long ago, and would be deleted at once (their
    # orders would stay, as the purge test shows).
    settings = order_settings(tmp_path, embedded_workers=False, job_retention=None)
    app = create_app(settings)
    async with app.test_app():
        store = state_of(app).require_store()
        check_upgraded([await store.get_order(i) for i in ids], ids)
    app = create_app(replace(settings, embedded_workers=True))
    async with app.test_app():
        store = state_of(app).require_store()
        client = app.test_client()
        # The queued old order now runs as a new-style job, once.
        done = await wait_status_of(client, ids[3], "completed", "Bearer demo-regular-key")
        assert done["items"] == OLD_ORDERS[3][2]
        assert await store.fulfilment_count(ids[3]) == 1
        # Its old idempotency key still answers with it; a new order gets a new id.
        headers = {"Authorization": "Bearer demo-regular-key", "Idempotency-Key": "key-4"}
        body = {"items": OLD_ORDERS[3][2], "processing_seconds": 0.5}
        replay = await client.post("/orders", json=body, headers=headers)
        assert replay.headers.get("Idempotent-Replayed") == "true"
        assert (await replay.get_json())["id"] == ids[3]
        new = await (await client.post("/orders", json=ORDER, headers=VIP)).get_json()
        assert new["id"] > max(ids)
    with sqlite3.connect(path) as conn:
        args = dict(conn.execute("SELECT id, args FROM qj_jobs").fetchall())
    assert all(args[i] == f"[{i}]" for i in ids)


async def wait_status_of(client: Client, order_id: int, status: str, auth: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            response = await client.get(f"/orders/{order_id}", headers={"Authorization": auth})
            body = await response.get_json()
            if body.get("status") == status:
                return dict(body)
            await asyncio.sleep(0.02)


@pytest.mark.postgres
async def test_a_postgres_database_of_the_previous_release_is_upgraded(
    postgres_schema: str,
) -> None:
    backend = PostgresBackend(TEST_POSTGRES_URL, schema=postgres_schema, min_size=1, max_size=4)
    await backend.open()
    try:
        async with backend.transaction() as conn:
            await pg_migrate_component(conn, "orders", PG_ORDER_MIGRATIONS[:1])
        ids = await write_old_orders(backend)
        store = PostgresOrdersStore(backend.database)
        await store.migrate()
        check_upgraded([await store.get_order(i) for i in ids], ids)
        async with backend.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO orders (customer, tier, items, "
                "processing_seconds, fail_times, status, created_at) "
                "VALUES ('carol', 'regular', '[]', 0, 0, 'queued', 0) RETURNING id"
            )
            row = await cur.fetchone()
        assert row is not None and row[0] > max(ids)
        jobs = await backend.list_jobs(JobFilter())
        assert {job.id: job.args for job in jobs} == {i: (i,) for i in ids}
    finally:
        await backend.close()
