"""The order service's tables on PostgreSQL: customers, orders written with their jobs,
effectively-once fulfilment, idempotency keys under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import psycopg
import pytest
from tests.conftest import TEST_POSTGRES_URL

from order_service import orders
from order_service.service import process_order
from order_service.store import CustomerExists, store_for
from order_service.store_postgres import PostgresOrdersStore
from quart_jobs import Jobs
from quart_jobs.backends.postgres.backend import PostgresBackend

NEW = orders.NewOrder("alice", "vip", [{"sku": "A-1", "quantity": 1}], 0.0, 0)

pytestmark = pytest.mark.postgres


@pytest.fixture
async def backend(postgres_schema: str) -> AsyncIterator[PostgresBackend]:
    backend = PostgresBackend(TEST_POSTGRES_URL, schema=postgres_schema, min_size=1, max_size=8)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def store(backend: PostgresBackend) -> PostgresOrdersStore:
    found = store_for(backend.database)
    assert isinstance(found, PostgresOrdersStore)
    await found.migrate()
    return found


@pytest.fixture
def jobs(backend: PostgresBackend) -> Jobs:
    jobs = Jobs(backend)
    jobs.register(process_order, name=orders.TASK)
    return jobs


async def test_migrate_is_idempotent_and_safe_in_parallel(store: PostgresOrdersStore) -> None:
    await asyncio.gather(store.migrate(), store.migrate(), store.migrate())
    assert await store.list_customers() == []


async def test_customers_are_created_found_by_key_and_revoked(store: PostgresOrdersStore) -> None:
    alice = await store.add_customer("alice", "vip", "hash-a")
    assert (alice.name, alice.tier, alice.key_hash, alice.revoked) == (
        "alice",
        "vip",
        "hash-a",
        False,
    )
    with pytest.raises(CustomerExists):
        await store.add_customer("alice", "regular", "hash-x")
    bob = await store.ensure_customer("bob", "regular", "hash-b")
    assert await store.customer_by_key_hash("hash-b") == bob

    bob_again = await store.ensure_customer("bob", "vip", "hash-b2")
    assert bob_again.id == bob.id and bob_again.tier == "vip"
    assert await store.customer_by_key_hash("hash-b") is None
    assert [c.name for c in await store.list_customers()] == ["alice", "bob"]

    revoked = await store.set_key("alice", None)
    assert revoked is not None and revoked.revoked
    assert await store.customer_by_key_hash("hash-a") is None
    assert await store.set_key("nobody", "h") is None
    rekeyed = await store.set_key("alice", "hash-a2")
    assert rekeyed is not None and not rekeyed.revoked
    assert await store.customer_by_key_hash("hash-a2") == rekeyed


async def test_a_fulfilment_is_recorded_once_whatever_the_retries(
    store: PostgresOrdersStore, jobs: Jobs
) -> None:
    order, created = await jobs.transaction(orders.place(NEW, jobs.clock(), None))
    assert created and order.job_id is not None
    job = await jobs.get(order.job_id)
    assert job.args == (order.id,)
    await asyncio.gather(
        *(jobs.transaction(orders.complete(order.id, job, jobs.clock())) for _ in range(5))
    )
    assert await store.fulfilment_count(order.id) == 1
    done = await store.get_order(order.id)
    assert done is not None and done.status == "completed"


async def test_one_idempotency_key_placed_at_once_is_one_order(
    store: PostgresOrdersStore, jobs: Jobs
) -> None:
    keyed = replace(NEW, idempotency_key="same")
    place = orders.place(keyed, jobs.clock(), None)

    async def once() -> tuple[orders.Order, bool]:
        try:
            return await jobs.transaction(place)
        except psycopg.errors.UniqueViolation:
            return await jobs.transaction(place)

    results = await asyncio.gather(*(once() for _ in range(5)))
    assert len({order.id for order, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * 4 + [True]
    assert len(await jobs.list()) == 1
    with pytest.raises(orders.IdempotencyKeyReused):
        await jobs.transaction(orders.place(replace(keyed, fail_times=3), jobs.clock(), None))
