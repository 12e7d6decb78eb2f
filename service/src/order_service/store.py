"""The order service's reads and its schema, beside the jobs in the same database: customers,
orders and fulfilments. (Writes of orders go through ``jobs.transaction``: see
:mod:`order_service.orders`.)

One protocol, one implementation per backend kind; :func:`store_for` picks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from quart_jobs import ConfigurationError
from quart_jobs.backends import Backend

from .orders import Order


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


#: The version of the ``orders`` migration component from which the ``orders`` table exists:
#: older databases have their orders in jobs (both stores upgrade them on start).
ORDERS_TABLE_VERSION = 2

#: Every customer column, in :class:`Customer` order (both stores read customers with it).
CUSTOMER_SELECT = "SELECT id, name, tier, key_hash, created_at, revoked FROM orders_customers"


def customer_from_row(row: tuple[int, str, str, str, float, int | bool] | None) -> Customer | None:
    """A :class:`Customer` from a row of :data:`CUSTOMER_SELECT`; ``None`` for no row."""
    if row is None:
        return None
    return Customer(row[0], row[1], row[2], row[3], row[4], bool(row[5]))


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


def store_for(backend: Backend) -> OrdersStore:
    """The store that keeps the service's tables in ``backend``'s database."""
    if backend.scheme == "sqlite":
        from quart_jobs.backends.sqlite.backend import SQLiteBackend

        from .store_sqlite import SQLiteOrdersStore

        assert isinstance(backend, SQLiteBackend)
        return SQLiteOrdersStore(backend)
    if backend.scheme == "postgresql":
        from .store_postgres import PostgresOrdersStore  # type: ignore[import-not-found,unused-ignore]

        store: OrdersStore = PostgresOrdersStore(backend)
        return store
    raise ConfigurationError(
        f"DATABASE_URL: the order service keeps its orders in SQL; the {backend.scheme} "
        "backend has none (use sqlite:///PATH or postgresql://...)"
    )
