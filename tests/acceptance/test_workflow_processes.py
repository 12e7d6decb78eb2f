"""Workflows across real processes, on SQLite and PostgreSQL: three ``quart-jobs worker``
processes, one killed with SIGKILL mid-run. A 3-step chain passes results from step to step;
a group of 100 runs its callback exactly once, after its last member ended, with the right
counts; a failed parent cancels its dependants transitively; nothing is left waiting or
queued, and no job has two attempts that overlap in time."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from quart_jobs import Jobs, JobState, step

from .procs import BIN

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.acceptance.workflows_app:jobs"
T = TypeVar("T")


TASKS = ("flow.start", "flow.add_one", "flow.member", "flow.report", "flow.fail")


async def _elsewhere() -> None:
    """Runs in the worker processes only: this process enqueues and reads by name."""


def store(url: str, action: Callable[[Jobs], Awaitable[T]]) -> T:
    async def run() -> T:
        async with Jobs(url) as jobs:
            for name in TASKS:
                jobs.register(_elsewhere, name=name)
            return await action(jobs)

    return asyncio.run(run())


def wait_for(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


def test_workflows_survive_a_killed_worker(url: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs.txt"
    runs.touch()
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT), "RUNS_FILE": str(runs)}

    async def seed(jobs: Jobs) -> dict[str, list[int]]:
        chain = await jobs.chain(step("flow.start", 1), step("flow.add_one"), step("flow.add_one"))
        group = await jobs.group(
            [step("flow.member", n) for n in range(100)], then=step("flow.report")
        )
        doomed = await jobs.chain(
            step("flow.fail"), step("flow.add_one"), step("flow.add_one"), step("flow.add_one")
        )
        return {
            "chain": [j.id for j in chain],
            "members": [j.id for j in group.members],
            "callback": [group.callback.id],
            "doomed": [j.id for j in doomed],
        }

    ids = store(url, seed)
    logs = [(tmp_path / f"worker{n}.log").open("ab") for n in range(3)]
    workers = [
        subprocess.Popen(
            [str(BIN / "quart-jobs"), "--app", APP, "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    try:
        wait_for("some members ran", lambda: len(runs.read_text().splitlines()) >= 10)
        workers[0].send_signal(signal.SIGKILL)  # mid-run: it holds jobs it will never finish
        workers[0].wait(timeout=10)

        def unfinished() -> int:
            async def count(jobs: Jobs) -> int:
                stats = await jobs.stats()
                return sum(
                    stats.count(state)
                    for state in (JobState.WAITING, JobState.QUEUED, JobState.RUNNING)
                )

            return store(url, count)

        wait_for("every job ended", lambda: unfinished() == 0)

        async def read(jobs: Jobs) -> dict[int, object]:
            every = [i for group in ids.values() for i in group]
            return {i: await jobs.get(i) for i in every}

        found = store(url, read)
    finally:
        for proc in workers[1:]:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        for log in logs:
            log.close()
    chain = [found[i] for i in ids["chain"]]
    assert [j.result for j in chain] == [1, 2, 3]  # type: ignore[attr-defined]
    callback = found[ids["callback"][0]]
    assert callback.state is JobState.SUCCEEDED  # type: ignore[attr-defined]
    assert callback.result == {"succeeded": 97, "failed": 3, "cancelled": 0, "unfinished": 0}  # type: ignore[attr-defined]
    last_member_end = max(found[i].finished_at for i in ids["members"])  # type: ignore[attr-defined]
    assert callback.started_at >= last_member_end  # type: ignore[attr-defined]
    doomed = [found[i] for i in ids["doomed"]]
    assert doomed[0].state is JobState.FAILED  # type: ignore[attr-defined]
    for before, job in itertools.pairwise(doomed):
        assert job.state is JobState.CANCELLED  # type: ignore[attr-defined]
        assert job.error == f"dependency {before.id} {before.state.value}"  # type: ignore[attr-defined]
    # Runs recorded by the tasks: the callback's exactly once, no two attempts of a job overlap.
    lines = [line.split() for line in runs.read_text().splitlines()]
    assert sum(1 for task, *_ in lines if task == "flow.report") == 1
    by_job: dict[int, list[tuple[float, float]]] = {}
    for _, job_id, _, began, ended in lines:
        by_job.setdefault(int(job_id), []).append((float(began), float(ended)))
    for spans in by_job.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end
    assert sum(1 for task, *_ in lines if task == "flow.add_one") == 2  # the doomed never ran
