"""Failures are visible with the library's default logging: a real ``quart-jobs worker``
process, no logging set-up, writes a WARNING line to stderr for ready jobs of a task that no
worker knows, and for a store it cannot reach (PostgreSQL behind a relay the test cuts)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from quart_jobs import Jobs

from .pg import Relay
from .procs import free_port, process_env, wait_until

pytestmark = [pytest.mark.acceptance, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
#: ``quart-jobs`` itself, with the module that shortens the unserved check imported first.
WORKER = [
    sys.executable,
    "-c",
    "import sys; from quart_jobs.cli import main; sys.argv[0] = 'quart-jobs'; main()",
    "--app",
    "tests.acceptance.watched_app:jobs",
    "worker",
]


async def unknown_to_the_worker() -> None:
    return None


def warnings(stderr: Path, *needles: str) -> list[str]:
    lines = stderr.read_text(errors="replace").splitlines()
    return [line for line in lines if "WARNING" in line and all(n in line for n in needles)]


def test_a_task_nobody_serves_and_an_unreachable_store_are_warned_on_stderr(
    tmp_path: Path, database: str
) -> None:
    port = free_port()
    relayed = f"postgresql://root@127.0.0.1:{port}/{database.rsplit('/', 1)[1]}"
    stderr = tmp_path / "stderr.log"

    async def enqueue_unknown() -> None:
        async with Jobs(database) as jobs:  # a process that knows the task, and runs no worker
            jobs.register(unknown_to_the_worker, name="nobody.knows.this")
            await jobs.enqueue("nobody.knows.this")

    with contextlib.ExitStack() as stack:
        relay = stack.enter_context(Relay("127.0.0.1", port, ("127.0.0.1", 5432)))
        env = process_env(relayed, None, PYTHONPATH=str(ROOT))
        err = stack.enter_context(open(stderr, "wb"))
        proc = subprocess.Popen(WORKER, env=env, stdout=subprocess.DEVNULL, stderr=err)
        stack.callback(lambda: (proc.poll() is None and proc.kill(), proc.wait(10)))
        assert wait_until(lambda: "running" in stderr.read_text(), 30), stderr.read_text()
        asyncio.run(enqueue_unknown())
        assert wait_until(lambda: warnings(stderr, "'nobody.knows.this'"), 30), stderr.read_text()

        relay.cut()  # the database host is gone
        assert wait_until(lambda: warnings(stderr, "store unavailable"), 30), stderr.read_text()
        proc.send_signal(signal.SIGTERM)
    print("\n" + "\n".join(warnings(stderr, "")))
