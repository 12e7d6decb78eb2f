"""The order service's own records, beside the jobs in the same database: customers and
fulfilments. (Orders themselves are jobs: see :mod:`order_service.service`.)

One protocol, one implementation per backend kind; :func:`store_for` picks it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Protocol

from quart_jobs.backends import Backend


class CustomerExists(Exception):
    """A customer with this name exists already."""


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    name: str
    tier: str  # "vip" or "regular"
    key_hash: str
    created_at: float
    revoked: bool = False


class OrdersStore(Protocol):
    async def migrate(self) -> None:
        """Create or upgrade the service's tables (safe when several processes start at once)."""

    async def add_customer(self, name: str, tier: str, key_hash: str) -> Customer:
        """Create a customer; :class:`CustomerExists` if the name is taken."""

    async def ensure_customer(self, name: str, tier: str, key_hash: str) -> Customer:
        """Create the customer, or update its tier and key (demo seeding)."""

    async def customer_by_key_hash(self, key_hash: str) -> Customer | None:
        """The active (not revoked) customer holding this key."""

    async def list_customers(self) -> list[Customer]: ...

    async def set_key(self, name: str, key_hash: str | None) -> Customer | None:
        """Replace a customer's key; ``None`` revokes it. ``None`` if no such customer."""

    async def record_fulfilment(self, order_id: int, attempt: int, worker: str) -> bool:
        """Write the order's fulfilment once: ``False`` when it was written before."""

    async def fulfilment_count(self, order_id: int) -> int: ...


class MemoryOrdersStore:
    """For tests with the memory backend."""

    def __init__(self) -> None:
        self._customers: dict[str, Customer] = {}
        self._fulfilments: dict[int, tuple[int, str]] = {}

    async def migrate(self) -> None:
        return None

    async def add_customer(self, name: str, tier: str, key_hash: str) -> Customer:
        if name in self._customers:
            raise CustomerExists(name)
        return await self.ensure_customer(name, tier, key_hash)

    async def ensure_customer(self, name: str, tier: str, key_hash: str) -> Customer:
        old = self._customers.get(name)
        customer = Customer(
            id=old.id if old else len(self._customers) + 1,
            name=name,
            tier=tier,
            key_hash=key_hash,
            created_at=old.created_at if old else time.time(),
        )
        self._customers[name] = customer
        return customer

    async def customer_by_key_hash(self, key_hash: str) -> Customer | None:
        for customer in self._customers.values():
            if customer.key_hash == key_hash and not customer.revoked:
                return customer
        return None

    async def list_customers(self) -> list[Customer]:
        return sorted(self._customers.values(), key=lambda c: c.id)

    async def set_key(self, name: str, key_hash: str | None) -> Customer | None:
        old = self._customers.get(name)
        if old is None:
            return None
        new = replace(old, key_hash=key_hash or "", revoked=key_hash is None)
        self._customers[name] = new
        return new

    async def record_fulfilment(self, order_id: int, attempt: int, worker: str) -> bool:
        if order_id in self._fulfilments:
            return False
        self._fulfilments[order_id] = (attempt, worker)
        return True

    async def fulfilment_count(self, order_id: int) -> int:
        return int(order_id in self._fulfilments)


def store_for(backend: Backend) -> OrdersStore:
    """The store that keeps the service's tables in ``backend``'s database."""
    if backend.scheme == "memory":
        return MemoryOrdersStore()
    if backend.scheme == "sqlite":
        from quart_jobs.backends.sqlite import SQLiteBackend

        from .store_sqlite import SQLiteOrdersStore

        assert isinstance(backend, SQLiteBackend)
        return SQLiteOrdersStore(backend)
    if backend.scheme == "postgresql":
        from .store_postgres import PostgresOrdersStore  # type: ignore[import-not-found,unused-ignore]

        store: OrdersStore = PostgresOrdersStore(backend)
        return store
    raise ValueError(f"no orders store for the {backend.scheme!r} backend")
