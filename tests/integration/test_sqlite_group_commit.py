"""The SQLite writer's group commit on a real file: callers' enqueues at once share one
multi-row INSERT, a write the database refuses fails alone, and a lone write that fails leaves
nothing behind."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from quart_jobs.backends.sqlite import SQLiteBackend
from quart_jobs.models import JobState, NewJob, Tier

from ..conftest import Clock


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
