"""A task cannot take its worker process down, not even through the function it gives to
``jobs.transaction`` (on SQLite it runs on the process's one writer thread), and a sync thread
that never returns does not keep it alive after SIGTERM or SIGINT: ``quart-jobs worker`` as a
real process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from quart_jobs import Job, Jobs, JobState

from . import poison_app
from .procs import BIN, Service, full_only, process_env, wait_until

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]
SHUTDOWN_TIMEOUT = 2
T = TypeVar("T")


def with_jobs(url: str, action: Callable[[Jobs], Awaitable[T]]) -> T:
    async def main() -> T:
        async with Jobs(url, max_attempts=1) as jobs:
            poison_app.register(jobs)
            return await action(jobs)

    return asyncio.run(main())


def enqueue(url: str, task: str, *args: object) -> int:
    async def action(jobs: Jobs) -> int:
        return (await jobs.enqueue(task, *args)).id

    return with_jobs(url, action)


def get(url: str, job_id: int) -> Job:
    return with_jobs(url, lambda jobs: jobs.get(job_id))


def in_state(url: str, ids: list[int], state: JobState) -> bool:
    return all(get(url, i).state is state for i in ids)


@pytest.fixture
def processes() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for svc in started:
        svc.stop()


def start(processes: list[Service], tmp_path: Path, program: list[str], url: str) -> Service:
    env = process_env(url, None, SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT), WORKER_CONCURRENCY="2")
    env["PYTHONPATH"] = str(ROOT)
    svc = Service(args=[], env=env, log_path=tmp_path / "process.log", program=program)
    processes.append(svc)
    return svc


def assert_transaction_rolled_back(url: str) -> None:
    """The job enqueued in the transaction that raised ``SystemExit`` does not exist."""

    async def action(jobs: Jobs) -> list[Job]:
        return await jobs.list(task="poison.done", limit=1000)

    assert all(job.args != (-1,) for job in with_jobs(url, action))


def signals(first: signal.Signals) -> pytest.MarkDecorator:
    """``first`` in the short set, the other signal in the full one."""
    other = signal.SIGINT if first is signal.SIGTERM else signal.SIGTERM
    return pytest.mark.parametrize(
        "sig", [pytest.param(first, id=first.name), full_only(other, id=other.name)]
    )


def assert_signal_leaves_in_time(svc: Service, url: str, stuck: int, sig: signal.Signals) -> None:
    """SIGTERM, or SIGINT to the process group (Ctrl-C), with a sync task blocked forever:
    exit 0 within SHUTDOWN_TIMEOUT + 5 s, the job back in the queue with no attempt charged."""
    assert wait_until(lambda: get(url, stuck).state is JobState.RUNNING, 30), svc.output()
    sent = time.monotonic()
    svc.signal(sig, group=sig == signal.SIGINT)
    try:
        code = svc.wait(timeout=SHUTDOWN_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {SHUTDOWN_TIMEOUT + 5}s after {sig.name}:\n{svc.output()}")
    assert code == 0, svc.output()
    assert time.monotonic() - sent < SHUTDOWN_TIMEOUT + 5
    back = get(url, stuck)
    assert back.state is JobState.QUEUED and back.attempts == 0


@signals(signal.SIGINT)
def test_quart_jobs_worker_survives_poison_tasks_and_exits_on_a_signal(
    tmp_path: Path, processes: list[Service], sig: signal.Signals
) -> None:
    url = f"sqlite:///{tmp_path}/jobs.sqlite3"
    poisoned = [enqueue(url, name) for name in poison_app.POISONS]
    healthy = [enqueue(url, "poison.done", n) for n in range(4)]
    program = [str(BIN / "quart-jobs"), "--app", "tests.acceptance.poison_app:jobs", "worker"]
    svc = start(processes, tmp_path, program, url)
    svc.args = ["--concurrency", "2", "--shutdown-timeout", str(SHUTDOWN_TIMEOUT)]
    svc.start()
    assert wait_until(lambda: in_state(url, healthy, JobState.SUCCEEDED), 30), svc.output()
    assert wait_until(lambda: in_state(url, poisoned, JobState.FAILED), 30), svc.output()
    assert svc.proc is not None and svc.proc.poll() is None, svc.output()  # still up
    errors = [get(url, i).error or "" for i in poisoned]
    assert errors == poison_app.POISON_ERRORS
    assert_transaction_rolled_back(url)
    assert "job 1 failed" in svc.output()  # failed for good is visible without logging set-up
    later = enqueue(url, "poison.done", 99)
    assert wait_until(lambda: get(url, later).state is JobState.SUCCEEDED, 30), svc.output()
    assert_signal_leaves_in_time(svc, url, enqueue(url, "poison.block_forever"), sig)
