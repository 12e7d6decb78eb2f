"""Helpers of the SQLite writer's tests."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

from quart_jobs.backends.sqlite.writer import Writer


async def hold_writer(writer: Writer) -> tuple[threading.Event, asyncio.Future[None]]:
    """A write that keeps the writer busy until the event is set: whatever is submitted
    meanwhile commits in the next batch, together."""
    release = threading.Event()
    entered = threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        entered.set()
        release.wait(10)

    busy = writer.submit(hold)
    await asyncio.to_thread(entered.wait, 10)
    return release, busy
