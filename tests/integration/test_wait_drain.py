"""``jobs.wait`` and ``jobs.drain`` on every backend: waiting for a job another ``Jobs`` (as
another process would) runs, timeouts, and draining jobs that enqueue jobs, fail and retry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from quart_jobs import Job, JobNotFound, Jobs, JobState, RetryPolicy, WorkerSettings, current_job
from quart_jobs.backends import Backend

from ..conftest import BACKENDS, drop_schema

FAST = WorkerSettings(
    concurrency=2, poll_interval=0.05, retry=RetryPolicy(base=30, min_delay=30), lease_seconds=5
)
NO_BACKOFF = WorkerSettings(
    concurrency=2, poll_interval=0.05, retry=RetryPolicy(base=0, max_delay=0)
)


async def echo(value: int) -> int:
    return value


async def fan_out(count: int) -> int:
    jobs: Jobs = FAN_OUT_JOBS[0]
    for i in range(count):
        await jobs.enqueue(echo, i)
    return count


async def fails_twice() -> int:
    attempt = current_job().attempts
    if attempt <= 2:
        raise ValueError(f"attempt {attempt}")
    return attempt


async def always_fails() -> None:
    raise ValueError("no")


async def sleeps(seconds: float) -> None:
    await asyncio.sleep(seconds)


FAN_OUT_JOBS: list[Jobs] = []


def register(jobs: Jobs) -> Jobs:
    for func in (echo, fan_out, fails_twice, always_fails, sleeps):
        jobs.register(func)
    return jobs


def shared_store(name: str, tmp_path: Path) -> Callable[[], Backend | str]:
    """A second, independent handle on the same store (what another process would open)."""
    if name == "memory":
        return lambda: "memory://"
    if name == "sqlite":
        return lambda: f"sqlite:///{tmp_path}/jobs.sqlite3"
    first = BACKENDS["postgresql"](tmp_path)
    schema = first.schema  # type: ignore[attr-defined]
    from quart_jobs.backends.postgres.backend import PostgresBackend

    return lambda: PostgresBackend(first.url, schema=schema, min_size=1, max_size=4)  # type: ignore[attr-defined]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], Backend | str]]:
    opener = shared_store(request.param, tmp_path)
    yield opener
    if request.param == "postgresql":
        backend = opener()
        assert isinstance(backend, Backend)
        await drop_schema(backend.schema)  # type: ignore[attr-defined]


@pytest.fixture
async def jobs(stores: Callable[[], Backend | str]) -> AsyncIterator[Jobs]:
    j = register(Jobs(stores(), worker_settings=FAST, max_attempts=3))
    FAN_OUT_JOBS[:] = [j]
    async with j:
        yield j


def first_look(jobs: Jobs, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set once ``jobs.wait`` has read its job (and is waiting, unless it had ended)."""
    looked = asyncio.Event()
    get = jobs.get

    async def read(job_id: int) -> Job:
        job = await get(job_id)
        looked.set()
        return job

    monkeypatch.setattr(jobs, "get", read)
    return looked


async def test_wait_returns_the_job_run_by_this_process(jobs: Jobs) -> None:
    job = await jobs.enqueue(echo, 7)
    async with jobs.run_worker():
        done = await jobs.wait(job.id, timeout=10)
    assert (done.state, done.result) == (JobState.SUCCEEDED, 7)


async def test_wait_returns_a_job_another_process_runs(
    jobs: Jobs, stores: Callable[[], Backend | str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if jobs._store.scheme == "memory":
        pytest.skip("a memory store belongs to one process")
    other = register(Jobs(stores(), worker_settings=FAST))
    async with other:
        job = await jobs.enqueue(echo, 8)
        looked = first_look(jobs, monkeypatch)
        waiting = asyncio.ensure_future(jobs.wait(job.id, timeout=20))
        await asyncio.wait_for(looked.wait(), timeout=5)
        assert not waiting.done()  # it saw the job queued, and waits
        async with other.run_worker():
            done = await waiting
    assert (done.state, done.result) == (JobState.SUCCEEDED, 8)


async def test_wait_sees_a_cancel_and_a_failure(
    jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = await jobs.enqueue(echo, 1)
    looked = first_look(jobs, monkeypatch)
    waiting = asyncio.ensure_future(jobs.wait(queued.id, timeout=10))
    await asyncio.wait_for(looked.wait(), timeout=5)  # it saw the job queued, and waits
    await jobs.cancel(queued.id)
    assert (await waiting).state is JobState.CANCELLED
    failing = await jobs.options(max_attempts=1).enqueue(always_fails)
    async with jobs.run_worker():
        failed = await jobs.wait(failing.id, timeout=10)
    assert failed.state is JobState.FAILED and failed.error == "ValueError: no"


async def test_wait_times_out_with_the_current_state(jobs: Jobs) -> None:
    job = await jobs.enqueue(echo, 1)
    with pytest.raises(TimeoutError, match=rf"job {job.id} is still queued after 0\.2s"):
        await jobs.wait(job.id, timeout=0.2)
    finished = await jobs.enqueue(echo, 2)
    await jobs.drain()
    assert (await jobs.wait(finished.id, timeout=0)).state is JobState.SUCCEEDED


async def test_wait_for_a_job_that_does_not_exist(jobs: Jobs) -> None:
    with pytest.raises(JobNotFound):
        await jobs.wait(10_000, timeout=1)


async def test_drain_runs_ready_jobs_and_the_jobs_they_enqueue(jobs: Jobs) -> None:
    await jobs.enqueue(fan_out, 5)
    await jobs.enqueue(echo, 1)
    later = await jobs.options(delay=3600).enqueue(echo, 2)
    drained = await jobs.drain(timeout=30)
    assert drained == {JobState.SUCCEEDED: 7}
    assert (drained.succeeded, drained.failed, drained.total) == (7, 0, 7)
    assert (await jobs.get(later.id)).state is JobState.QUEUED  # not ready: not waited for
    assert not jobs.workers
    assert await jobs.drain() == {}


async def test_drain_counts_failures_and_retries_waiting_for_their_backoff(jobs: Jobs) -> None:
    flaky = await jobs.enqueue(fails_twice)
    doomed = await jobs.options(max_attempts=1).enqueue(always_fails)
    drained = await jobs.drain(timeout=30)
    assert (drained.retried, drained.failed, drained.succeeded) == (1, 1, 0)
    assert drained == {JobState.FAILED: 1}  # ended jobs only: the retried one is not ended
    assert repr(drained) == "Drained(failed=1, retried=1)" and drained.total == 2
    assert (await jobs.get(flaky.id)).state is JobState.QUEUED  # backoff: 30 s or more
    assert (await jobs.get(doomed.id)).state is JobState.FAILED


async def test_drain_runs_retries_that_are_ready_at_once(
    stores: Callable[[], Backend | str],
) -> None:
    async with register(Jobs(stores(), worker_settings=NO_BACKOFF)) as jobs:
        flaky = await jobs.enqueue(fails_twice)
        drained = await jobs.drain(timeout=30)
        assert (drained.retried, drained.succeeded) == (2, 1)
        assert repr(drained) == "Drained(succeeded=1, retried=2)"
        assert dict(drained) == {JobState.SUCCEEDED: 1} and drained.total == 3
        assert (await jobs.get(flaky.id)).result == 3


async def test_drain_gives_up_after_its_timeout_and_puts_the_job_back(jobs: Jobs) -> None:
    job = await jobs.enqueue(sleeps, 30)
    with pytest.raises(TimeoutError, match=r"still running after 0\.3s"):
        await jobs.drain(timeout=0.3)
    back = await jobs.get(job.id)
    assert (back.state, back.attempts) == (JobState.QUEUED, 0)
    assert not jobs.workers
