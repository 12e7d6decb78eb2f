"""The SQLite backend's readers: a small pool of threads, each with a connection of its own
that only reads (in WAL mode it never waits for the writer)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from .writer import storage_error

T = TypeVar("T")


class Readers:
    """A small pool of reader threads, each with its own connection."""

    def __init__(self, path: Path, *, threads: int = 2, busy_timeout_ms: int = 5000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._pool = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="quart-jobs-sqlite-read"
        )
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    async def run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            try:
                return func(self._conn())
            except sqlite3.DatabaseError as exc:
                raise storage_error(self._path, exc) from exc

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
