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

from quart_jobs.backends.running import in_job, running_job
from quart_jobs.backends.sqlite.writer import FEW_AHEAD, Writer


async def _writer(tmp_path: Path) -> Writer:
    writer = Writer(tmp_path / "w.sqlite3")
    await writer.start()
    await writer.run(lambda conn: conn.execute("CREATE TABLE t (name TEXT)"))
    return writer


def _insert(name: str, log: list[str]) -> Callable[[sqlite3.Connection], str]:
    def write(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t VALUES (?)", (name,))
        log.append(name)
        return name

    return write


async def test_processing_writes_go_ahead_of_waiting_enqueues(tmp_path: Path) -> None:
    writer = await _writer(tmp_path)
    try:
        release = threading.Event()
        entered = threading.Event()

        def hold(conn: sqlite3.Connection) -> None:  # the batch in progress
            entered.set()
            release.wait(10)

        busy = writer.submit(hold)
        await asyncio.to_thread(entered.wait, 10)
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
        # in its order, right after (the same round of the writer, not a later one).
        assert order[:2] == ["claim", "job-write"]
        assert order[2:] == [f"enqueue-{i}" for i in range(50)] + [
            f"enqueue-late-{i}" for i in range(5)
        ]

        def rows(conn: sqlite3.Connection) -> list[str]:
            return [r[0] for r in conn.execute("SELECT name FROM t ORDER BY rowid")]

        assert await writer.run(rows) == order  # all committed
    finally:
        await writer.stop()


async def test_a_few_enqueues_go_before_the_claim_that_met_them(tmp_path: Path) -> None:
    """A VIP order enqueued while a worker's claim waits in the same batch: the claim sees it."""
    writer = await _writer(tmp_path)
    try:
        release = threading.Event()
        entered = threading.Event()

        def hold(conn: sqlite3.Connection) -> None:
            entered.set()
            release.wait(10)

        busy = writer.submit(hold)
        await asyncio.to_thread(entered.wait, 10)
        log: list[str] = []

        def claim(conn: sqlite3.Connection) -> list[str]:
            log.append("claim")
            return [r[0] for r in conn.execute("SELECT name FROM t ORDER BY rowid")]

        claimed = writer.submit(claim, durable=False)
        enqueues = [writer.submit(_insert(f"vip-{i}", log)) for i in range(FEW_AHEAD)]
        release.set()
        await busy
        assert await claimed == [f"vip-{i}" for i in range(FEW_AHEAD)]
        assert await asyncio.gather(*enqueues) == [f"vip-{i}" for i in range(FEW_AHEAD)]
        assert log == [f"vip-{i}" for i in range(FEW_AHEAD)] + ["claim"]
    finally:
        await writer.stop()


async def test_one_kind_alone_is_one_transaction(tmp_path: Path) -> None:
    writer = await _writer(tmp_path)
    try:
        release = threading.Event()
        entered = threading.Event()

        def hold(conn: sqlite3.Connection) -> None:
            entered.set()
            release.wait(10)

        busy = writer.submit(hold)
        await asyncio.to_thread(entered.wait, 10)
        log: list[str] = []
        writes = [writer.submit(_insert(f"e{i}", log)) for i in range(10)]
        release.set()
        await busy
        assert await asyncio.gather(*writes) == [f"e{i}" for i in range(10)]
        assert log == [f"e{i}" for i in range(10)]
    finally:
        await writer.stop()


async def test_in_job_only_inside_the_running_job_context() -> None:
    assert not in_job()

    async def task() -> bool:
        running_job.set(True)
        return in_job()

    assert await asyncio.create_task(task())
    assert not in_job()  # the job's own task's context, not the caller's
