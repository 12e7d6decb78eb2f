"""The order service's tables in the SQLite database of the jobs, written through the jobs'
one writer thread (group commit), read from its reader connections."""

from __future__ import annotations

import json
import sqlite3
import time

from quart_jobs import SQLiteDatabase

from . import orders as o
from .orders import Order
from .store_shared import (
    CUSTOMER_SELECT,
    ORDERS_TABLE_VERSION,
    Customer,
    CustomerExists,
    customer_from_row,
)

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
    # Orders become records of their own (before, an order was its job). Ids continue the
    # old orders' (which were their jobs' ids): AUTOINCREMENT never reuses one.
    """
    CREATE TABLE orders (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        customer TEXT NOT NULL,
        tier TEXT NOT NULL,
        items TEXT NOT NULL,
        processing_seconds REAL NOT NULL,
        fail_times INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('queued', 'processing', 'completed', 'failed', 'cancelled')),
        created_at REAL NOT NULL,
        started_at REAL,
        completed_at REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        idempotency_key TEXT,
        fingerprint TEXT,
        job_id INTEGER,
        UNIQUE (customer, idempotency_key)
    );
    CREATE INDEX orders_customer ON orders (customer, id);
    CREATE INDEX orders_customer_status ON orders (customer, status, id);
    CREATE INDEX orders_job ON orders (job_id);
    CREATE INDEX orders_unsettled ON orders (id) WHERE status IN ('queued', 'processing');
    """,
)


class SQLiteOrdersStore:
    def __init__(self, database: SQLiteDatabase) -> None:
        self._db = database

    async def migrate(self) -> None:
        def then(conn: sqlite3.Connection, before: int) -> None:
            if 0 < before < ORDERS_TABLE_VERSION:
                _copy_old_orders(conn)

        await self._db.migrate("orders", MIGRATIONS, then=then)

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
            return customer_from_row(
                conn.execute(f"{CUSTOMER_SELECT} WHERE name = ?", (name,)).fetchone()
            )

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
            return customer_from_row(
                conn.execute(f"{CUSTOMER_SELECT} WHERE name = ?", (name,)).fetchone()
            )

        customer = await self._db.write(run)
        assert customer is not None
        return customer

    async def customer_by_key_hash(self, key_hash: str) -> Customer | None:
        return await self._db.read(
            lambda conn: customer_from_row(
                conn.execute(
                    f"{CUSTOMER_SELECT} WHERE key_hash = ? AND revoked = 0", (key_hash,)
                ).fetchone()
            )
        )

    async def list_customers(self) -> list[Customer]:
        def run(conn: sqlite3.Connection) -> list[Customer]:
            rows = conn.execute(f"{CUSTOMER_SELECT} ORDER BY id").fetchall()
            return [c for c in map(customer_from_row, rows) if c is not None]

        return await self._db.read(run)

    async def set_key(self, name: str, key_hash: str | None) -> Customer | None:
        def run(conn: sqlite3.Connection) -> Customer | None:
            conn.execute(
                "UPDATE orders_customers SET key_hash = ?, revoked = ? WHERE name = ?",
                (key_hash or "", int(key_hash is None), name),
            )
            return customer_from_row(
                conn.execute(f"{CUSTOMER_SELECT} WHERE name = ?", (name,)).fetchone()
            )

        return await self._db.write(run)

    async def get_order(self, order_id: int) -> Order | None:
        return await self._db.read(lambda conn: _order(conn, o.BY_ID, (order_id,)))

    async def order_of_job(self, job_id: int) -> Order | None:
        return await self._db.read(lambda conn: _order(conn, o.BY_JOB, (job_id,)))

    async def list_orders(self, customer: str, status: str | None, limit: int) -> list[Order]:
        query, params = (
            (o.LIST, (customer, limit))
            if status is None
            else (o.LIST_BY_STATUS, (customer, status, limit))
        )
        return await self._db.read(
            lambda conn: [o.order_from_row(r) for r in conn.execute(query, params)]
        )

    async def unsettled_orders(self, after_id: int, limit: int) -> list[int]:
        return await self._db.read(
            lambda conn: [r[0] for r in conn.execute(o.UNSETTLED_PAGE, (after_id, limit))]
        )

    async def processing_orders(self) -> list[int]:
        return await self._db.read(lambda conn: [r[0] for r in conn.execute(o.PROCESSING)])

    async def fulfilment_count(self, order_id: int) -> int:
        return await self._db.read(
            lambda conn: int(
                conn.execute(
                    "SELECT COUNT(*) FROM orders_fulfilments WHERE order_id = ?", (order_id,)
                ).fetchone()[0]
            )
        )


def _order(conn: sqlite3.Connection, query: str, params: tuple[int, ...]) -> Order | None:
    row = conn.execute(query, params).fetchone()
    return None if row is None else o.order_from_row(row)


def _copy_old_orders(conn: sqlite3.Connection) -> None:
    """Each order held by a job becomes an ``orders`` row with the job's id, status and
    history; the job's arguments then carry the order's id only."""
    for row in conn.execute(o.OLD_ORDER_JOBS).fetchall():
        order = o.order_from_old_job(row)
        if order is not None:
            conn.execute(o.INSERT_MIGRATED, order)
            conn.execute(o.REWRITE_OLD_ARGS, (json.dumps([order[0]]), order[0]))
