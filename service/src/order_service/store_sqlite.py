"""The order service's tables in the SQLite database of the jobs, written through the jobs'
one writer thread (group commit), read from its reader connections."""

from __future__ import annotations

import sqlite3
import time

from quart_jobs.backends.sqlite import SQLiteBackend, migrate_component

from .store import Customer, CustomerExists

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE orders_customers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        tier TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        created_at REAL NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX orders_customers_key ON orders_customers (key_hash);
    CREATE TABLE orders_fulfilments (
        order_id INTEGER PRIMARY KEY,
        attempt INTEGER NOT NULL,
        worker TEXT NOT NULL,
        fulfilled_at REAL NOT NULL
    );
    """,
)

_CUSTOMER = "SELECT id, name, tier, key_hash, created_at, revoked FROM orders_customers"


def _customer(row: tuple[int, str, str, str, float, int] | None) -> Customer | None:
    if row is None:
        return None
    return Customer(row[0], row[1], row[2], row[3], row[4], bool(row[5]))


class SQLiteOrdersStore:
    def __init__(self, backend: SQLiteBackend) -> None:
        self._db = backend

    async def migrate(self) -> None:
        await self._db.write(lambda conn: migrate_component(conn, "orders", MIGRATIONS))

    async def add_customer(self, name: str, tier: str, key_hash: str) -> Customer:
        def run(conn: sqlite3.Connection) -> Customer | None:
            try:
                conn.execute(
                    "INSERT INTO orders_customers (name, tier, key_hash, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (name, tier, key_hash, time.time()),
                )
            except sqlite3.IntegrityError:
                raise CustomerExists(name) from None
            return _customer(conn.execute(f"{_CUSTOMER} WHERE name = ?", (name,)).fetchone())

        customer = await self._db.write(run)
        assert customer is not None
        return customer

    async def ensure_customer(self, name: str, tier: str, key_hash: str) -> Customer:
        def run(conn: sqlite3.Connection) -> Customer | None:
            conn.execute(
                "INSERT INTO orders_customers (name, tier, key_hash, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET tier = excluded.tier, "
                "key_hash = excluded.key_hash, revoked = 0",
                (name, tier, key_hash, time.time()),
            )
            return _customer(conn.execute(f"{_CUSTOMER} WHERE name = ?", (name,)).fetchone())

        customer = await self._db.write(run)
        assert customer is not None
        return customer

    async def customer_by_key_hash(self, key_hash: str) -> Customer | None:
        return await self._db.read(
            lambda conn: _customer(
                conn.execute(
                    f"{_CUSTOMER} WHERE key_hash = ? AND revoked = 0", (key_hash,)
                ).fetchone()
            )
        )

    async def list_customers(self) -> list[Customer]:
        def run(conn: sqlite3.Connection) -> list[Customer]:
            rows = conn.execute(f"{_CUSTOMER} ORDER BY id").fetchall()
            return [c for c in map(_customer, rows) if c is not None]

        return await self._db.read(run)

    async def set_key(self, name: str, key_hash: str | None) -> Customer | None:
        def run(conn: sqlite3.Connection) -> Customer | None:
            conn.execute(
                "UPDATE orders_customers SET key_hash = ?, revoked = ? WHERE name = ?",
                (key_hash or "", int(key_hash is None), name),
            )
            return _customer(conn.execute(f"{_CUSTOMER} WHERE name = ?", (name,)).fetchone())

        return await self._db.write(run)

    async def record_fulfilment(self, order_id: int, attempt: int, worker: str) -> bool:
        return await self._db.write(
            lambda conn: (
                conn.execute(
                    "INSERT INTO orders_fulfilments (order_id, attempt, worker, fulfilled_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING",
                    (order_id, attempt, worker, time.time()),
                ).rowcount
                == 1
            )
        )

    async def fulfilment_count(self, order_id: int) -> int:
        return await self._db.read(
            lambda conn: int(
                conn.execute(
                    "SELECT COUNT(*) FROM orders_fulfilments WHERE order_id = ?", (order_id,)
                ).fetchone()[0]
            )
        )
