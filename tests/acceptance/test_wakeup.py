"""Wake-ups between processes on one SQLite file: a worker process that polls only once a
minute still starts a job another process enqueued at once, because the enqueuing process
signals it through the sockets beside the database. Polling stays the fallback. The last test
holds PostgreSQL to the same promise for a dependant queued by another process's outcome."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from quart_jobs.backends.sqlite.wakeup import wakeup_directory

from .procs import wait_until

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.acceptance

APP = """
from quart_jobs import Jobs, WorkerSettings

jobs = Jobs("sqlite:///w.sqlite3", worker_settings=WorkerSettings(poll_interval={poll}))

@jobs.task
async def ping(n: int) -> int:
    return n
"""


def _state(db: Path, job_id: int) -> str | None:
    if not db.exists():
        return None
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT state FROM qj_jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else str(row[0])


@pytest.fixture
def worker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    with _worker(tmp_path, APP.format(poll=getattr(request, "param", 60))) as proc:
        yield proc


@contextlib.contextmanager
def _worker(tmp_path: Path, app: str) -> Iterator[subprocess.Popen[str]]:
    """``quart-jobs worker`` on the app ``app`` (module ``wapp``), started, then SIGTERMed."""
    (tmp_path / "wapp.py").write_text(app)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUART")}
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "quart-jobs"), "--app", "wapp:jobs", "worker"],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=env | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert wait_until(lambda: "started" in (tmp_path / "worker.log").read_text(), 30)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()


ENQUEUE = """
import asyncio, sys
from wapp import jobs, ping

async def main() -> None:
    async with jobs:
        print((await jobs.enqueue(ping, int(sys.argv[1]))).id)

asyncio.run(main())
"""


def _enqueue(db: Path, n: int) -> int:
    """Enqueue from another process (as a web process would), with no worker of its own."""
    done = subprocess.run(
        [sys.executable, "-c", ENQUEUE, str(n)],
        cwd=db.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout.split()[-1])


def test_a_worker_that_polls_once_a_minute_starts_a_new_job_at_once(
    tmp_path: Path, worker: subprocess.Popen[str]
) -> None:
    db = tmp_path / "w.sqlite3"
    sockets = wakeup_directory(db)  # beside the file, or under /tmp for a long path
    assert wait_until(lambda: any(sockets.glob("r-*.sock")), 30), "the worker listens"
    for n in (1, 2, 3):
        job_id = _enqueue(db, n)
        # Far less than the 60 s poll interval: only the wake-up can have started it.
        assert wait_until(lambda i=job_id: _state(db, i) == "succeeded", 15), _state(db, job_id)
    assert worker.poll() is None


CHAIN = """
import asyncio
from quart_jobs import Jobs, WorkerSettings

# Its drain takes only from the default queue: the dependant, in "pings", is the other's.
jobs = Jobs("sqlite:///w.sqlite3", worker_settings=WorkerSettings(queues=("default",)))

@jobs.task(name="first")
async def first() -> int:
    return 1

@jobs.task(name="wapp.ping")
async def ping(n: int) -> int:
    return n

async def main() -> None:
    async with jobs:
        parent = await jobs.enqueue(first)
        child = await jobs.options(after=[parent], queue="pings").enqueue(ping, 7)
        print(child.id, flush=True)
        await asyncio.sleep(1)  # the wake-ups of the enqueues are spent: the worker sleeps
        await jobs.drain()  # runs the parent: its success queues the child
        await asyncio.sleep(60)  # open meanwhile: its closing wakes nobody before the check

asyncio.run(main())
"""


def test_a_dependant_that_another_process_s_outcome_queues_starts_at_once(
    tmp_path: Path, worker: subprocess.Popen[str]
) -> None:
    """A job waiting for a parent that another process runs: when that process records the
    parent's success (which queues the dependant), it wakes the workers of every process."""
    db = tmp_path / "w.sqlite3"
    assert wait_until(lambda: any(wakeup_directory(db).glob("r-*.sock")), 30), "it listens"
    chain = subprocess.Popen(
        [sys.executable, "-c", CHAIN], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    try:
        assert chain.stdout is not None
        child = int(chain.stdout.readline())
        # Far less than the worker's 60 s poll interval: only the wake-up can have started it.
        assert wait_until(lambda: _state(db, child) == "succeeded", 15), _state(db, child)
    finally:
        chain.kill()
        chain.wait(30)
        if chain.stdout is not None:
            chain.stdout.close()


def test_a_stale_socket_of_a_dead_process_is_removed(
    tmp_path: Path, worker: subprocess.Popen[str]
) -> None:
    db = tmp_path / "w.sqlite3"
    sockets = wakeup_directory(db)  # beside the file, or under /tmp for a long path
    assert wait_until(lambda: any(sockets.glob("r-*.sock")), 30)
    stale = sockets / "r-999999-dead.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(stale))
    dead.close()  # bound, then gone: what a kill -9 leaves behind
    job_id = _enqueue(db, 7)
    assert wait_until(lambda: _state(db, job_id) == "succeeded", 15)
    assert not stale.exists()


@pytest.mark.parametrize("worker", [1], indirect=True)
def test_without_a_usable_socket_directory_polling_still_runs_jobs(
    tmp_path: Path, worker: subprocess.Popen[str]
) -> None:
    db = tmp_path / "w.sqlite3"
    blocker = wakeup_directory(db)
    if blocker.is_dir():
        for path in blocker.iterdir():
            path.unlink()
        blocker.rmdir()
    blocker.write_text("not a directory")  # the enqueuing process cannot use it
    job_id = _enqueue(db, 9)
    assert wait_until(lambda: _state(db, job_id) == "succeeded", 20)
    assert worker.poll() is None


@pytest.mark.postgres
def test_on_postgresql_a_dependant_that_another_process_s_outcome_queues_starts_at_once(
    tmp_path: Path, database: str
) -> None:
    """The same promise on PostgreSQL, where the trigger that queues the dependant NOTIFYs the
    workers of every process in the outcome's transaction."""
    import psycopg

    def state(job_id: int) -> str | None:
        with psycopg.connect(database) as conn:
            row = conn.execute("SELECT state FROM qj_jobs WHERE id = %s", (job_id,)).fetchone()
        return None if row is None else str(row[0])

    with _worker(tmp_path, APP.replace("sqlite:///w.sqlite3", database).format(poll=60)):
        chain = subprocess.Popen(
            [sys.executable, "-c", CHAIN.replace("sqlite:///w.sqlite3", database)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert chain.stdout is not None
            child = int(chain.stdout.readline())
            # Far less than the worker's 60 s poll interval: only the NOTIFY can start it.
            assert wait_until(lambda: state(child) == "succeeded", 15), state(child)
        finally:
            chain.kill()
            chain.wait(30)
            if chain.stdout is not None:
                chain.stdout.close()
