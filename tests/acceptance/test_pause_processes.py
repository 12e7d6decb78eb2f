"""Pausing a queue across real processes, on SQLite and PostgreSQL: a ``quart-jobs worker``
drains a backlog; ``quart-jobs pause emails`` from another process; no job of that queue starts
after the command returned (one second allowed for a claim already in flight), while other
queues keep running; the worker restarted: still paused; ``quart-jobs resume emails``: the
backlog drains."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from quart_jobs import Jobs, JobState

from .procs import BIN

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.acceptance.pause_app:jobs"
BACKLOG = 40
#: A claim that read the queue before the pause committed may still start its jobs.
IN_FLIGHT = 1.0
T = TypeVar("T")


def store(url: str, action: Callable[[Jobs], Awaitable[T]]) -> T:
    async def run() -> T:
        async with Jobs(url) as jobs:  # the tasks by name: this process only enqueues and reads
            jobs.task(name="pause.email", queue="emails")(_email)
            jobs.task(name="pause.mark")(_mark)
            return await action(jobs)

    return asyncio.run(run())


def emails(url: str) -> list[tuple[JobState, float | None]]:
    async def read(jobs: Jobs) -> list[tuple[JobState, float | None]]:
        found = await jobs.list(task="pause.email", limit=500)
        return [(job.state, job.started_at) for job in found]

    return store(url, read)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def marker_runs(url: str) -> None:
    """Enqueue a job of another queue and wait for it to succeed: the worker is claiming."""

    async def enqueue(jobs: Jobs) -> int:
        return (await jobs.enqueue("pause.mark", 1)).id

    job_id = store(url, enqueue)
    wait_for(
        f"job {job_id} of the default queue succeeded",
        lambda: store(url, lambda jobs: jobs.get(job_id)).state is JobState.SUCCEEDED,
    )


def command(env: dict[str, str], url: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(BIN / "quart-jobs"), "--database-url", url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [str(BIN / "quart-jobs"), "--app", APP, "worker"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code


def test_a_paused_queue_starts_nothing_across_processes_and_restarts_until_resumed(
    url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}

    async def seed(jobs: Jobs) -> None:
        for n in range(BACKLOG):
            await jobs.enqueue("pause.email", n)

    store(url, seed)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        wait_for(
            "the worker started some of the backlog",
            lambda: sum(s is JobState.SUCCEEDED for s, _ in emails(url)) >= 3,
        )
        paused = command(env, url, "pause", "emails")
        returned = time.time()
        assert paused.stdout.startswith("queue 'emails' is paused (")
        # The running ones finish, the worker keeps claiming (another queue's job runs) ...
        wait_for(
            "no job of the paused queue runs",
            lambda: all(s is not JobState.RUNNING for s, _ in emails(url)),
        )
        marker_runs(url)
        found = emails(url)
        late = [at - returned for _, at in found if at is not None and at > returned]
        # ... and none of the paused queue started after the command returned.
        assert all(delay <= IN_FLIGHT for delay in late), late
        waiting = sum(s is JobState.QUEUED for s, _ in found)
        assert waiting > 0, "the backlog was not drained before the pause"
        started = sum(at is not None for _, at in found)
    finally:
        assert worker.stop() == 0

    worker = Worker(env, tmp_path / "worker.log")  # a restart: the pause holds
    try:
        marker_runs(url)
        after_restart = emails(url)
        assert sum(at is not None for _, at in after_restart) == started
        assert "is paused" in command(env, url, "stats").stdout
        resumed = command(env, url, "resume", "emails")
        assert resumed.stdout.startswith("queue 'emails' is running (")  # and a worker woken
        wait_for(
            "the backlog drained",
            lambda: all(s is JobState.SUCCEEDED for s, _ in emails(url)),
        )
    finally:
        assert worker.stop() == 0
    print(
        f"\n{url.split(':')[0]}: {BACKLOG} jobs; paused with {waiting} waiting; "
        f"{len(late)} started after the pause returned (latest {max(late, default=0):+.3f}s); "
        f"none after a restart; all {BACKLOG} done after resume"
    )


async def _email(n: int) -> int:
    return n


async def _mark(n: int) -> int:
    return n
