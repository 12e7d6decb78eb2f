"""The order service's tables on PostgreSQL: customers and effectively-once fulfilment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from order_service.store import CustomerExists, store_for
from order_service.store_postgres import PostgresOrdersStore
from quart_jobs.backends.postgres import PostgresBackend

from ..conftest import TEST_POSTGRES_URL

pytestmark = pytest.mark.postgres


@pytest.fixture
async def store(postgres_schema: str) -> AsyncIterator[PostgresOrdersStore]:
    backend = PostgresBackend(TEST_POSTGRES_URL, schema=postgres_schema, min_size=1, max_size=4)
    await backend.open()
    try:
        orders = store_for(backend)
        assert isinstance(orders, PostgresOrdersStore)
        await orders.migrate()
        yield orders
    finally:
        await backend.close()


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
    store: PostgresOrdersStore,
) -> None:
    results = await asyncio.gather(
        *(store.record_fulfilment(42, attempt, f"w{attempt}") for attempt in range(1, 6))
    )
    assert sorted(results) == [False, False, False, False, True]
    assert not await store.record_fulfilment(42, 9, "late")
    assert await store.fulfilment_count(42) == 1
    assert await store.fulfilment_count(43) == 0
