"""The order service's reads and its schema, beside the jobs in the same database: customers,
orders and fulfilments. (Writes of orders go through ``jobs.transaction``: see
:mod:`order_service.orders`.)

One protocol, one implementation per backend kind; :func:`store_for` picks it.
"""

from __future__ import annotations

from typing import Protocol

from quart_jobs import AppDatabase, ConfigurationError, SQLiteDatabase

from .orders import Order
from .store_shared import Customer, CustomerExists

__all__ = ["Customer", "CustomerExists", "OrdersStore", "store_for"]


class OrdersStore(Protocol):
    async def migrate(self) -> None:
        """Create or upgrade the service's tables (safe when several processes start at once).
        Upgrading from the release where orders were jobs copies each order into ``orders``."""

    async def add_customer(self, name: str, tier: str, key_hash: str) -> Customer:
        """Create a customer; :class:`CustomerExists` if the name is taken."""

    async def ensure_customer(self, name: str, tier: str, key_hash: str) -> Customer:
        """Create the customer, or update its tier and key (demo seeding)."""

    async def customer_by_key_hash(self, key_hash: str) -> Customer | None:
        """The active (not revoked) customer holding this key."""

    async def list_customers(self) -> list[Customer]: ...

    async def set_key(self, name: str, key_hash: str | None) -> Customer | None:
        """Replace a customer's key; ``None`` revokes it. ``None`` if no such customer."""

    async def get_order(self, order_id: int) -> Order | None: ...

    async def order_of_job(self, job_id: int) -> Order | None: ...

    async def list_orders(self, customer: str, status: str | None, limit: int) -> list[Order]:
        """The customer's orders, newest first."""

    async def unsettled_orders(self, after_id: int, limit: int) -> list[int]:
        """Ids of orders queued or processing, above ``after_id``, in id order."""

    async def processing_orders(self) -> list[int]: ...

    async def fulfilment_count(self, order_id: int) -> int: ...


def store_for(database: AppDatabase | None) -> OrdersStore:
    """The store that keeps the service's tables in the jobs' database (``jobs.database``)."""
    if isinstance(database, SQLiteDatabase):
        from .store_sqlite import SQLiteOrdersStore

        return SQLiteOrdersStore(database)
    if database is not None and database.dialect == "postgresql":
        from .store_postgres import PostgresOrdersStore  # type: ignore[import-not-found,unused-ignore]

        store: OrdersStore = PostgresOrdersStore(database)
        return store
    raise ConfigurationError(
        "DATABASE_URL: the order service keeps its orders in SQL; the memory backend has none "
        "(use sqlite:///PATH or postgresql://...)"
    )
