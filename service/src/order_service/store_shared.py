"""What the order service's stores share, whatever the database: the customer record, its
columns and the version of the ``orders`` migrations from which the ``orders`` table exists.
Both :mod:`.store_sqlite` and :mod:`.store_postgres` import it, and :mod:`.store` picks one."""

from __future__ import annotations

from dataclasses import dataclass


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
