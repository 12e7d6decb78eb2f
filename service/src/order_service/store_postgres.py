"""The order service's tables in the PostgreSQL database (and schema) of the jobs, written and
read through the jobs' connection pool."""

from __future__ import annotations

import time

import psycopg

from quart_jobs.backends import Backend
from quart_jobs.backends.postgres import PostgresBackend, migrate_component

from .store import Customer, CustomerExists

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE orders_customers (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL UNIQUE,
        tier text NOT NULL,
        key_hash text NOT NULL,
        created_at double precision NOT NULL,
        revoked boolean NOT NULL DEFAULT false
    );
    CREATE INDEX orders_customers_key ON orders_customers (key_hash);
    CREATE TABLE orders_fulfilments (
        order_id bigint PRIMARY KEY,
        attempt integer NOT NULL,
        worker text NOT NULL,
        fulfilled_at double precision NOT NULL
    );
    """,
)

_CUSTOMER = "SELECT id, name, tier, key_hash, created_at, revoked FROM orders_customers"
_RETURNING = "RETURNING id, name, tier, key_hash, created_at, revoked"


def _customer(row: tuple[int, str, str, str, float, bool] | None) -> Customer | None:
    if row is None:
        return None
    return Customer(row[0], row[1], row[2], row[3], row[4], bool(row[5]))


class PostgresOrdersStore:
    def __init__(self, backend: Backend) -> None:
        if not isinstance(backend, PostgresBackend):
            raise TypeError(f"PostgresOrdersStore needs a PostgresBackend, not {backend!r}")
        self._db = backend

    async def migrate(self) -> None:
        async with self._db.transaction() as conn:
            await migrate_component(conn, "orders", MIGRATIONS)

    async def add_customer(self, name: str, tier: str, key_hash: str) -> Customer:
        try:
            async with self._db.transaction() as conn:
                cur = await conn.execute(
                    "INSERT INTO orders_customers (name, tier, key_hash, created_at) "
                    f"VALUES (%s, %s, %s, %s) {_RETURNING}",
                    (name, tier, key_hash, time.time()),
                )
                customer = _customer(await cur.fetchone())
        except psycopg.errors.UniqueViolation:
            raise CustomerExists(name) from None
        assert customer is not None
        return customer

    async def ensure_customer(self, name: str, tier: str, key_hash: str) -> Customer:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO orders_customers (name, tier, key_hash, created_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET tier = excluded.tier, "
                f"key_hash = excluded.key_hash, revoked = false {_RETURNING}",
                (name, tier, key_hash, time.time()),
            )
            customer = _customer(await cur.fetchone())
        assert customer is not None
        return customer

    async def customer_by_key_hash(self, key_hash: str) -> Customer | None:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                f"{_CUSTOMER} WHERE key_hash = %s AND NOT revoked", (key_hash,)
            )
            return _customer(await cur.fetchone())

    async def list_customers(self) -> list[Customer]:
        async with self._db.transaction() as conn:
            cur = await conn.execute(f"{_CUSTOMER} ORDER BY id")
            rows = await cur.fetchall()
        return [c for c in map(_customer, rows) if c is not None]

    async def set_key(self, name: str, key_hash: str | None) -> Customer | None:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                f"UPDATE orders_customers SET key_hash = %s, revoked = %s WHERE name = %s "
                f"{_RETURNING}",
                (key_hash or "", key_hash is None, name),
            )
            return _customer(await cur.fetchone())

    async def record_fulfilment(self, order_id: int, attempt: int, worker: str) -> bool:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO orders_fulfilments (order_id, attempt, worker, fulfilled_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (order_id) DO NOTHING",
                (order_id, attempt, worker, time.time()),
            )
            return cur.rowcount == 1

    async def fulfilment_count(self, order_id: int) -> int:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT COUNT(*) FROM orders_fulfilments WHERE order_id = %s", (order_id,)
            )
            row = await cur.fetchone()
        return 0 if row is None else int(row[0])
