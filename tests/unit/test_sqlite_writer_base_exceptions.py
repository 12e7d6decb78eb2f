"""What the application's function raises on the SQLite writer thread, ``SystemExit``,
``KeyboardInterrupt`` or its own ``BaseException`` included, fails its own write only: that
write is rolled back, its caller gets the exception, and the writer goes on serving the others.
A writer thread that ended all the same fails the writes waiting for it instead of leaving their
callers waiting forever."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from quart_jobs.backends.sqlite.writer import Writer, _Write
from quart_jobs.errors import BackendUnavailable
from tests.unit.writer_support import hold_writer


class Poison(BaseException):
    """A ``BaseException`` of the application's own."""


RAISED: list[BaseException] = [SystemExit(3), KeyboardInterrupt(), Poison("custom")]


async def _writer(tmp_path: Path, writer: Writer | None = None) -> Writer:
    writer = writer or Writer(tmp_path / "w.sqlite3")
    await writer.start()
    await writer.run(lambda conn: conn.execute("CREATE TABLE IF NOT EXISTS t (name TEXT)"))
    return writer


def _insert(name: str) -> Callable[[sqlite3.Connection], str]:
    def write(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t VALUES (?)", (name,))
        return name

    return write


def _insert_then_raise(name: str, exc: BaseException) -> Callable[[sqlite3.Connection], str]:
    def write(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t VALUES (?)", (name,))
        raise exc

    return write


async def _names(writer: Writer) -> list[str]:
    rows = await writer.run(
        lambda conn: conn.execute("SELECT name FROM t ORDER BY name").fetchall()
    )
    return [row[0] for row in rows]


@pytest.mark.parametrize("raised", RAISED, ids=lambda e: type(e).__name__)
async def test_a_lone_write_that_raises_a_base_exception_is_rolled_back(
    tmp_path: Path, raised: BaseException
) -> None:
    writer = await _writer(tmp_path)
    try:
        with pytest.raises(type(raised)) as caught:
            # the future itself: a task that ends with SystemExit would stop the event loop
            await asyncio.wait_for(writer.submit(_insert_then_raise("poisoned", raised)), 10)
        assert caught.value is raised
        assert await writer.run(_insert("after")) == "after"  # the writer still serves
        assert await _names(writer) == ["after"]
    finally:
        await writer.stop()


@pytest.mark.parametrize("raised", RAISED, ids=lambda e: type(e).__name__)
async def test_a_write_that_raises_a_base_exception_in_a_batch_fails_alone(
    tmp_path: Path, raised: BaseException
) -> None:
    writer = await _writer(tmp_path)
    try:
        release, busy = await hold_writer(writer)
        # The next batch: one poisoned write among others, each in its own savepoint.
        before = writer.submit(_insert("before"))
        poisoned = writer.submit(_insert_then_raise("poisoned", raised))
        after = writer.submit(_insert("after"))
        release.set()
        await busy
        assert await asyncio.wait_for(before, 10) == "before"
        with pytest.raises(type(raised)):
            await poisoned
        assert await after == "after"
        assert await _names(writer) == ["after", "before"]
        assert await writer.run(_insert("later")) == "later"
    finally:
        await writer.stop()


async def test_a_combined_call_that_raises_a_base_exception_fails_its_callers_alone(
    tmp_path: Path,
) -> None:
    writer = await _writer(tmp_path)
    try:

        def combine(conn: sqlite3.Connection, names: list[str]) -> list[str]:
            for name in names:
                conn.execute("INSERT INTO t VALUES (?)", (name,))
                if name == "poisoned":
                    raise Poison("in a combined call")
            return names

        release, busy = await hold_writer(writer)
        calls = [
            asyncio.ensure_future(writer.run_combined(combine, name))
            for name in ("a", "poisoned", "b")
        ]
        release.set()
        await busy
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
        assert results[0] == "a" and results[2] == "b"
        assert isinstance(results[1], Poison)
        assert await _names(writer) == ["a", "b"]
    finally:
        await writer.stop()


class _FailingWriter(Writer):
    """A writer whose batch machinery breaks once (a bug of the writer, not of a write)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.broken = threading.Event()

    def _commit_batch(self, batch: list[_Write[object]]) -> None:
        if self.broken.is_set():
            raise RuntimeError("writer bug")
        super()._commit_batch(batch)


async def test_writes_fail_instead_of_waiting_forever_once_the_thread_ended(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = _FailingWriter(tmp_path / "w.sqlite3")
    await _writer(tmp_path, writer)
    try:
        writer.broken.set()
        with pytest.raises(BackendUnavailable, match="writer"):
            await asyncio.wait_for(writer.run(_insert("lost")), 10)
        with pytest.raises(BackendUnavailable, match="thread failed"):
            await writer.run(_insert("refused"))
        assert any(r.levelname == "CRITICAL" and r.exc_info for r in caplog.records)
    finally:
        await writer.stop()
    writer.broken.clear()
    await _writer(tmp_path, writer)  # opened again, it serves again
    try:
        assert await writer.run(_insert("again")) == "again"
    finally:
        await writer.stop()
