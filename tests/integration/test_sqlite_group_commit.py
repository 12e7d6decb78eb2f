"""The SQLite writer's group commit on a real file: callers' enqueues at once share one
multi-row INSERT, a write the database refuses fails alone, and a lone write that fails leaves
nothing behind."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from quart_jobs import Jobs, Transaction
from quart_jobs.backends.sqlite.backend import SQLiteBackend
from quart_jobs.models import JobState, NewJob, Tier

from ..conftest import Clock
from .conftest import FAST, wait_state


def _job(i: int, task: str | None = "t") -> NewJob:
    return NewJob(task=task, priority=int(Tier.REGULAR), args=(i,))  # type: ignore[arg-type]


async def test_a_refused_enqueue_among_callers_at_once_fails_alone(
    tmp_path: Path, clock: Clock
) -> None:
    backend = SQLiteBackend(tmp_path / "jobs.sqlite3")
    await backend.open()
    try:
        # Submitted in one turn of the event loop (so mostly one batch and one combined write);
        # job 5 has no task (NOT NULL): the combined INSERT fails, each call is written alone.
        calls = [backend.enqueue([_job(i, None if i == 5 else "t")], clock()) for i in range(10)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(results[5], sqlite3.IntegrityError)
        stored = [r for n, r in enumerate(results) if n != 5]
        for i, result in zip([n for n in range(10) if n != 5], stored, strict=True):
            assert not isinstance(result, BaseException)
            job = await backend.get(result[0].job.id)
            assert job is not None and job.args == (i,) and job.state is JobState.QUEUED
        count = await backend.read(
            lambda conn: conn.execute("SELECT COUNT(*) FROM qj_jobs").fetchone()
        )
        assert count == (9,)
    finally:
        await backend.close()


async def test_a_lone_write_that_fails_leaves_nothing_and_the_next_one_commits(
    tmp_path: Path,
) -> None:
    backend = SQLiteBackend(tmp_path / "jobs.sqlite3")
    await backend.open()
    try:
        await backend.write(lambda conn: conn.execute("CREATE TABLE notes (body TEXT)"))

        def half_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO notes VALUES ('half')")
            raise ValueError("refused by the application")

        with pytest.raises(ValueError, match="refused"):
            await backend.write(half_then_fail)
        await backend.write(lambda conn: conn.execute("INSERT INTO notes VALUES ('whole')"))
        rows = await backend.read(lambda conn: conn.execute("SELECT body FROM notes").fetchall())
        assert rows == [("whole",)]
    finally:
        await backend.close()


_FLOOD: dict[str, Any] = {}


async def record_jobs_committed() -> None:
    """Waits for the test's go, then writes down how many jobs are committed."""
    await _FLOOD["go"].wait()
    _FLOOD["writing"].set()  # the write below is submitted in this same step

    def write(tx: Transaction) -> None:
        row = tx.fetchone("SELECT COUNT(*) FROM qj_jobs")
        assert row is not None
        _FLOOD["seen"].append(int(row[0]))

    await _FLOOD["jobs"].transaction(write)


async def test_a_running_job_s_write_goes_ahead_of_enqueues_waiting_for_the_writer(
    tmp_path: Path,
) -> None:
    """Processing keeps its share of the writer under an intake flood: while a batch is in
    progress and enqueues wait for the next one, a running job's own write (and the worker's
    outcome after it) commit first; the job finishes before any of those enqueues."""
    jobs = Jobs(f"sqlite:///{tmp_path}/jobs.sqlite3", worker_settings=FAST)
    _FLOOD.clear()
    _FLOOD.update(go=asyncio.Event(), writing=asyncio.Event(), seen=[])
    _FLOOD["jobs"] = jobs
    go, writing, seen = _FLOOD["go"], _FLOOD["writing"], _FLOOD["seen"]
    jobs.task(record_jobs_committed)

    async with jobs:
        backend = jobs._store
        assert isinstance(backend, SQLiteBackend)
        async with jobs.run_worker():
            job = await jobs.enqueue(record_jobs_committed)
            await wait_state(jobs, job.id, JobState.RUNNING)
            release, entered = threading.Event(), threading.Event()

            def hold(conn: sqlite3.Connection) -> None:  # the batch in progress
                entered.set()
                release.wait(10)

            busy = asyncio.ensure_future(backend.write(hold))
            await asyncio.to_thread(entered.wait, 10)
            later = jobs.options(delay=3600)  # waiting enqueues the worker does not take
            flood = [asyncio.ensure_future(later.enqueue(record_jobs_committed)) for _ in range(20)]
            await asyncio.sleep(0)  # the enqueues are waiting for the writer
            go.set()
            await writing.wait()
            release.set()
            await busy
            await asyncio.gather(*flood)
            await wait_state(jobs, job.id, JobState.SUCCEEDED)
    assert seen == [1]  # only its own job: none of the 20 waiting enqueues had committed
