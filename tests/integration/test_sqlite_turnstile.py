"""Writers of several processes take turns at the SQLite file's write lock
(``backends/sqlite/turnstile.py``): a writer that finds the lock taken holds the turnstile while
it waits, and a writer about to begin lets a waiting one go first. Another open file
description of the turnstile stands for another process here (``flock`` locks conflict
between descriptions, as between processes)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from quart_jobs.backends.sqlite import turnstile as t
from quart_jobs.backends.sqlite.turnstile import Turnstile
from quart_jobs.backends.sqlite.writer import connect


def _busy(exc: BaseException) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.sqlite3"
    conn = connect(path, synchronous="FULL", busy_timeout_ms=0)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    return path


@pytest.fixture
def other_process(db: Path) -> Iterator[int]:
    """The turnstile as another process opens it (a descriptor of its own)."""
    fd = os.open(f"{db}-turnstile", os.O_RDWR | os.O_CREAT, 0o644)
    yield fd
    os.close(fd)


def _taken(fd: int) -> bool:
    """Whether someone else holds the turnstile that ``fd`` opens."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _write_lock_free(db: Path) -> bool:
    conn = sqlite3.connect(db, isolation_level=None, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


@dataclass
class Writer:
    """A writer's side: its turnstile and its connection (no busy timeout)."""

    turnstile: Turnstile
    conn: sqlite3.Connection

    def begin(self, seconds: float = 30) -> None:
        self.turnstile.begin(self.conn, time.monotonic() + seconds, _busy)

    def begin_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.begin, daemon=True)
        thread.start()
        return thread


@pytest.fixture
def writer(db: Path) -> Iterator[Writer]:
    w = Writer(Turnstile(db), connect(db, synchronous="FULL", busy_timeout_ms=0))
    yield w
    w.conn.close()
    w.turnstile.close()


@pytest.fixture
def holder(db: Path) -> Iterator[sqlite3.Connection]:
    """Another process's connection, holding the write lock (its batch) until it commits."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=0)
    conn.execute("BEGIN IMMEDIATE")
    yield conn
    conn.close()


def test_a_writer_that_finds_the_lock_taken_waits_holding_the_turnstile(
    db: Path, other_process: int, writer: Writer, holder: sqlite3.Connection
) -> None:
    thread = writer.begin_in_thread()
    for _ in range(500):
        if _taken(other_process):
            break
        time.sleep(0.01)
    assert _taken(other_process), "the waiting writer did not take its turn"
    assert thread.is_alive()
    holder.execute("COMMIT")
    thread.join(timeout=10)
    assert not thread.is_alive() and writer.conn.in_transaction  # it has the write lock now
    assert not _taken(other_process)  # and gave the turnstile back
    writer.conn.execute("ROLLBACK")


def test_a_writer_about_to_begin_lets_a_waiting_process_go_first(
    db: Path, other_process: int, writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(t, "MAX_YIELD", 30.0)
    fcntl.flock(other_process, fcntl.LOCK_EX)  # another process waits for the write lock
    thread = writer.begin_in_thread()
    time.sleep(0.3)
    assert thread.is_alive() and _write_lock_free(db)  # it did not take the lock
    fcntl.flock(other_process, fcntl.LOCK_UN)  # the other process has begun
    thread.join(timeout=10)
    assert not thread.is_alive() and writer.conn.in_transaction
    writer.conn.execute("ROLLBACK")


def test_a_waiting_process_that_holds_the_turnstile_too_long_is_not_waited_for_ever(
    other_process: int, writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(t, "MAX_YIELD", 0.05)
    fcntl.flock(other_process, fcntl.LOCK_EX)  # stuck (say, stopped) while waiting
    writer.begin()
    assert writer.conn.in_transaction
    writer.conn.execute("ROLLBACK")
    fcntl.flock(other_process, fcntl.LOCK_UN)


def test_a_busy_lock_past_the_deadline_raises_and_leaves_the_turnstile_free(
    other_process: int, writer: Writer, holder: sqlite3.Connection
) -> None:
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        writer.begin(seconds=0.2)
    assert not _taken(other_process)
