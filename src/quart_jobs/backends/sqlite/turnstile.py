"""Turns at the file's write lock between processes (the writers of several processes on one
SQLite file: web processes, worker processes).

SQLite's lock is not fair: a writer with work queued commits, and takes the lock again a few
microseconds later, while a writer of another process waiting for it tries again only now and
then (SQLite's busy handler sleeps 1, 2, 5, 10, 15, 20 ms… between tries). Measured with a web
process flooded with orders and an ``orders worker`` beside it, the worker finished 13 % of the
flood's orders during it (36-44 % with turns), and two web processes had a p99 of 0.5 to 1.5 s.

So a writer that finds the lock taken waits **in turn**: it holds the turnstile (an exclusive
``flock`` on ``<database>-turnstile``) while it tries ``BEGIN IMMEDIATE`` again every 0.1 ms at
first, every 2 ms at most; and a writer about to begin first lets a waiting one go: while the
turnstile is held by another process, it waits (at most :data:`MAX_YIELD` seconds) before its
own ``BEGIN``. The lock then goes round the processes that want it, batch by batch. A
process that dies holding the turnstile loses it with its file descriptors. Writers that do
not take part (an older version, the ``sqlite3`` shell) are only waited for, as before. Where
``flock`` is missing (not POSIX), writers just try again with the same pauses.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

#: Seconds between tries of a lock another process holds, growing by half each time up to
#: :data:`MAX_PAUSE`.
FIRST_PAUSE = 0.0001
MAX_PAUSE = 0.002
#: The longest a writer about to begin lets a waiting process go first (that one's batch).
MAX_YIELD = 0.05


class Turnstile:
    """The ``flock`` of one writer on ``<database>-turnstile`` (see the module)."""

    def __init__(self, database: Path) -> None:
        self._fd: int | None = None
        if fcntl is not None:
            try:
                self._fd = os.open(f"{database}-turnstile", os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:  # a read-only directory: no turns, tries with pauses only
                self._fd = None

    def _take(self) -> bool:
        if self._fd is None:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _give(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def begin(
        self, conn: sqlite3.Connection, deadline: float, is_busy: Callable[[BaseException], bool]
    ) -> None:
        """``BEGIN IMMEDIATE`` on ``conn`` (a connection without busy timeout), in turn;
        raises the busy error once ``deadline`` (``time.monotonic()``) has passed."""
        self._let_waiter_go()
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        held = self._take()
        try:
            for _ in _pauses():
                # Another process waiting before us goes first: our turn comes after it.
                held = held or self._take()
                if not held and time.monotonic() <= deadline:
                    continue
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not is_busy(exc) or time.monotonic() > deadline:
                        raise
        finally:
            if held:
                self._give()

    def _let_waiter_go(self) -> None:
        """Wait while another process holds the turnstile (it waits for the write lock), at
        most :data:`MAX_YIELD` seconds; at once when none does (the common case: two system
        calls)."""
        until = time.monotonic() + MAX_YIELD
        for _ in _pauses(first=False):
            if self._take():
                self._give()
                return
            if time.monotonic() >= until:
                return


def _pauses(*, first: bool = True) -> Iterator[None]:
    """Sleeps between tries: :data:`FIRST_PAUSE`, growing by half each time up to
    :data:`MAX_PAUSE` (``first=False``: the first try comes at once)."""
    pause = FIRST_PAUSE
    if not first:
        yield
    while True:
        time.sleep(pause)
        yield
        pause = min(pause * 1.5, MAX_PAUSE)
