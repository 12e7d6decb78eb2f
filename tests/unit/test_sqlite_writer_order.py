"""The SQLite writer's ordering rule: processing writes commit ahead of queued enqueues.

Under an intake flood the writer always has a batch of enqueues in progress and more waiting;
the worker's claims and outcomes (``durable=False``) and a running job's own writes
(``urgent=True``) must not wait for the whole next batch: they commit in a transaction of their
own before the writes that were waiting with them, and those commit right after. A few
enqueues waiting with a claim go first, in the claim's transaction, so the claim can take them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from quart_jobs.backends.running import in_job, running_job
from quart_jobs.backends.sqlite.writer import FEW_AHEAD, INTAKE_SHARE, Writer, _share, _Write
from tests.unit.writer_support import hold_writer

W = TypeVar("W", bound=Writer)


async def _started(writer: W) -> W:
    await writer.start()
    await writer.run(lambda conn: conn.execute("CREATE TABLE t (name TEXT)"))
    return writer


async def _writer(tmp_path: Path) -> Writer:
    return await _started(Writer(tmp_path / "w.sqlite3"))


def _insert(name: str, log: list[str]) -> Callable[[sqlite3.Connection], str]:
    def write(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t VALUES (?)", (name,))
        log.append(name)
        return name

    return write


def _names(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM t ORDER BY rowid")]


async def test_processing_writes_go_ahead_of_waiting_enqueues(tmp_path: Path) -> None:
    writer = await _writer(tmp_path)
    try:
        release, busy = await hold_writer(writer)  # the batch in progress
        log: list[str] = []
        intake = [writer.submit(_insert(f"enqueue-{i}", log)) for i in range(50)]
        claim = writer.submit(_insert("claim", log), durable=False)
        job_write = writer.submit(_insert("job-write", log), urgent=True)
        more = [writer.submit(_insert(f"enqueue-late-{i}", log)) for i in range(5)]
        release.set()
        await busy
        results = await asyncio.gather(*intake, claim, job_write, *more)
        assert results == [f"enqueue-{i}" for i in range(50)] + ["claim", "job-write"] + [
            f"enqueue-late-{i}" for i in range(5)
        ]
        order = list(log)
        # The urgent writes ran first, in the order submitted; every enqueue still ran once,
        # in its order, right after.
        assert order[:2] == ["claim", "job-write"]
        assert order[2:] == [f"enqueue-{i}" for i in range(50)] + [
            f"enqueue-late-{i}" for i in range(5)
        ]
        assert await writer.run(_names) == order  # all committed
    finally:
        await writer.stop()


async def test_a_claim_waits_for_at_most_a_share_of_the_piled_up_enqueues(tmp_path: Path) -> None:
    """While a worker's claims come, a claim that comes during a flood of enqueues commits
    after the enqueues of the turn in progress (INTAKE_SHARE), not after all of them."""
    writer = await _writer(tmp_path)
    try:
        release, busy = await hold_writer(writer)
        log: list[str] = []
        in_turn = threading.Event()
        claim_sent = threading.Event()

        def first(conn: sqlite3.Connection) -> str:
            in_turn.set()  # the first turn of the flood is being written
            claim_sent.wait(10)
            return _insert("enqueue-0", log)(conn)

        flood = [writer.submit(first)]
        flood += [writer.submit(_insert(f"enqueue-{i}", log)) for i in range(1, 3 * INTAKE_SHARE)]
        working = writer.submit(_insert("claim-0", log), durable=False)  # a worker is at work
        release.set()
        await busy
        await asyncio.to_thread(in_turn.wait, 10)
        claim = writer.submit(_insert("claim-1", log), durable=False)
        claim_sent.set()
        await asyncio.gather(*flood, working, claim)
        assert log.index("claim-0") == 0
        assert log.index("claim-1") == 1 + INTAKE_SHARE  # right after the turn in progress
        assert [name for name in log if not name.startswith("claim")] == [
            f"enqueue-{i}" for i in range(3 * INTAKE_SHARE)
        ]
        assert await writer.run(_names) == log
    finally:
        await writer.stop()


async def test_a_few_enqueues_go_before_the_claim_that_met_them(tmp_path: Path) -> None:
    """A VIP order enqueued while a worker's claim waits in the same batch: the claim sees it."""
    writer = await _writer(tmp_path)
    try:
        release, busy = await hold_writer(writer)
        log: list[str] = []

        def claim(conn: sqlite3.Connection) -> list[str]:
            log.append("claim")
            return _names(conn)

        claimed = writer.submit(claim, durable=False)
        enqueues = [writer.submit(_insert(f"vip-{i}", log)) for i in range(FEW_AHEAD)]
        release.set()
        await busy
        assert await claimed == [f"vip-{i}" for i in range(FEW_AHEAD)]
        assert await asyncio.gather(*enqueues) == [f"vip-{i}" for i in range(FEW_AHEAD)]
        assert log == [f"vip-{i}" for i in range(FEW_AHEAD)] + ["claim"]
    finally:
        await writer.stop()


class _CountingWriter(Writer):
    """Counts the transactions the writer commits."""

    commits = 0

    def _commit_batch(self, batch: list[_Write[object]]) -> None:
        self.commits += 1
        super()._commit_batch(batch)


@pytest.mark.parametrize("count", [10, 3 * INTAKE_SHARE])
async def test_one_kind_alone_is_one_transaction(tmp_path: Path, count: int) -> None:
    """Enqueues piled up with no worker at work commit together (one transaction, one fsync),
    however many, as many producers' enqueues do."""
    writer = await _started(_CountingWriter(tmp_path / "w.sqlite3"))
    try:
        release, busy = await hold_writer(writer)
        log: list[str] = []
        writes = [writer.submit(_insert(f"e{i}", log)) for i in range(count)]
        before = writer.commits
        release.set()
        await busy
        assert await asyncio.gather(*writes) == [f"e{i}" for i in range(count)]
        assert writer.commits - before == 1  # all in one turn, after the held one
        assert log == [f"e{i}" for i in range(count)]
    finally:
        await writer.stop()


async def test_in_job_only_inside_the_running_job_context() -> None:
    assert not in_job()

    async def task() -> bool:
        running_job.set(True)
        return in_job()

    assert await asyncio.create_task(task())
    assert not in_job()  # the job's own task's context, not the caller's


async def test_a_share_counts_enqueues_written_by_one_statement_once() -> None:
    """Enqueues next to each other go in with one multi-row statement (``combine``): a turn
    under processing takes INTAKE_SHARE such runs, whatever their length, or that many other
    writes."""
    loop = asyncio.get_running_loop()

    def combine(conn: sqlite3.Connection, items: list[object]) -> list[object]:
        return items

    def other(conn: sqlite3.Connection) -> None:
        return None

    def write(combined: bool) -> _Write[object]:
        w: _Write[object] = _Write(other, loop.create_future(), loop, True, True, False)
        if combined:
            w.combine, w.item = combine, None
        return w

    assert _share([write(True) for _ in range(200)]) == 200
    assert _share([write(False) for _ in range(200)]) == INTAKE_SHARE
    mixed = [write(True), write(True), *(write(False) for _ in range(2 * INTAKE_SHARE))]
    assert _share(mixed) == 2 + INTAKE_SHARE - 1
