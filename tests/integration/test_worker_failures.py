"""A task cannot take its worker down; the worker's own loops fail loudly and drain.

On the memory and SQLite backends (the ``jobs`` fixture), with real workers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from quart_jobs import BackendUnavailable, Jobs, JobState
from quart_jobs.commands.session import Failed
from quart_jobs.commands.worker import run_worker_until_signal

from . import tasks
from .conftest import wait_state

KINDS = ["SystemExit", "KeyboardInterrupt", "CancelledError", "GeneratorExit", "Poison"]


@pytest.fixture(autouse=True)
def released_threads() -> Iterator[None]:
    tasks.release.clear()
    yield
    tasks.release.set()  # blocked sync tasks return, their threads end


def raising(exc: BaseException) -> Any:
    """A stand-in for a backend method that raises ``exc`` every time."""

    async def method(*args: object, **kwargs: object) -> Any:
        raise exc

    return method


@pytest.mark.parametrize("task", [tasks.raiser, tasks.sync_raiser], ids=["async", "sync"])
@pytest.mark.parametrize("kind", KINDS)
async def test_whatever_a_task_raises_fails_only_its_job(jobs: Jobs, kind: str, task: Any) -> None:
    async with jobs.run_worker(concurrency=2) as worker:
        neighbour = await jobs.enqueue(tasks.sleeper, 0.3)
        await wait_state(jobs, neighbour.id, JobState.RUNNING)
        poisoned = await jobs.options(max_attempts=2).enqueue(task, kind)
        await wait_state(jobs, poisoned.id, JobState.FAILED)
        await wait_state(jobs, neighbour.id, JobState.SUCCEEDED)
        later = [await jobs.enqueue(tasks.record, n) for n in range(3)]  # still claiming
        for job in later:
            await wait_state(jobs, job.id, JobState.SUCCEEDED)
        assert worker.running
    failed = await jobs.get(poisoned.id)
    assert failed.attempts == 2  # retried like any failure, then failed for good
    assert failed.error is not None and failed.error.startswith(kind)
    assert failed.traceback is not None and "raise poison(kind)" in failed.traceback


async def test_a_task_s_own_timeout_error_keeps_its_message(jobs: Jobs) -> None:
    async with jobs.run_worker():
        own = await jobs.options(max_attempts=1).enqueue(tasks.raiser, "TimeoutError")
        slow = await jobs.options(max_attempts=1, timeout=0.05).enqueue(tasks.sleeper, 30)
        await wait_state(jobs, own.id, JobState.FAILED)
        await wait_state(jobs, slow.id, JobState.FAILED)
    assert (await jobs.get(own.id)).error == "TimeoutError: the upstream took too long"
    assert (await jobs.get(slow.id)).error == "TimeoutError: job exceeded its timeout (0.05s)"


async def test_a_stuck_sync_task_past_its_timeout_frees_its_slot(jobs: Jobs) -> None:
    async with jobs.run_worker(concurrency=1):
        stuck = await jobs.options(timeout=0.1, max_attempts=1).enqueue(tasks.sync_blocked)
        after = await jobs.enqueue(tasks.sync_job_id)
        await wait_state(jobs, stuck.id, JobState.FAILED)
        await wait_state(jobs, after.id, JobState.SUCCEEDED)
    assert (await jobs.get(stuck.id)).error == "TimeoutError: job exceeded its timeout (0.1s)"
    # The next sync job ran at once on another thread, and current_job() worked in it.
    assert (await jobs.get(after.id)).result == after.id


async def test_shutdown_requeues_a_sync_task_that_never_returns(jobs: Jobs) -> None:
    worker = jobs.start_worker(concurrency=1, shutdown_timeout=0.1)
    stuck = await jobs.enqueue(tasks.sync_blocked)
    await wait_state(jobs, stuck.id, JobState.RUNNING)
    await asyncio.wait_for(jobs.stop_worker(worker), timeout=5)
    back = await jobs.get(stuck.id)
    assert back.state is JobState.QUEUED and back.attempts == 0
    # The thread the worker gave up on does not keep the process alive at exit.
    blocked = [t for t in threading.enumerate() if t.name.startswith("quart-jobs-sync")]
    assert blocked and all(t.daemon for t in blocked)


async def test_a_job_claimed_by_a_round_in_flight_at_the_stop_is_put_back_in_time(
    jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = jobs._store.claim_round
    in_round, go_on = asyncio.Event(), asyncio.Event()

    async def held(*args: Any) -> Any:
        done = await real(*args)
        if done.claimed:  # the claim is committed; the stop begins before the worker sees it
            in_round.set()
            await go_on.wait()
        return done

    stop_began = asyncio.Event()
    unsubscribe = jobs._store.unsubscribe

    def unsubscribed(callback: Any) -> None:
        unsubscribe(callback)
        stop_began.set()  # the stop sets its deadline in the same step

    monkeypatch.setattr(jobs._store, "claim_round", held)
    monkeypatch.setattr(jobs._store, "unsubscribe", unsubscribed)
    long = await jobs.enqueue(tasks.sleeper, 60)
    worker = jobs.start_worker(concurrency=1, shutdown_timeout=0.2)
    await asyncio.wait_for(in_round.wait(), timeout=5)
    stopping = asyncio.ensure_future(jobs.stop_worker(worker))
    await asyncio.wait_for(stop_began.wait(), timeout=5)
    go_on.set()
    # The job that round launches gets the same deadline as those running at the stop.
    await asyncio.wait_for(stopping, timeout=10)
    back = await jobs.get(long.id)
    assert back.state is JobState.QUEUED and back.attempts == 0


@pytest.mark.parametrize("kind", ["set", "object", "nan"])
async def test_a_result_that_is_not_json_fails_the_attempt(jobs: Jobs, kind: str) -> None:
    async with jobs.run_worker():
        job = await jobs.options(max_attempts=1).enqueue(tasks.returns, kind)
        await wait_state(jobs, job.id, JobState.FAILED)
    failed = await jobs.get(job.id)
    assert failed.result is None
    assert failed.error is not None and "task result is not JSON" in failed.error


async def test_a_job_that_fails_for_good_is_a_warning_a_retry_is_not(
    jobs: Jobs, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="quart_jobs"):
        async with jobs.run_worker():
            job = await jobs.options(max_attempts=2).enqueue(tasks.flaky, 5)
            await wait_state(jobs, job.id, JobState.FAILED)
    levels = {r.levelname for r in caplog.records if f"job {job.id} retried" in r.getMessage()}
    assert levels == {"INFO"}
    assert any(
        r.levelname == "WARNING" and f"job {job.id} failed" in r.getMessage()
        for r in caplog.records
    )


async def test_a_failing_heartbeat_loop_is_logged_and_the_worker_drains(
    jobs: Jobs, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs._store, "heartbeat", raising(RuntimeError("heartbeat bug")))
    with caplog.at_level(logging.INFO, logger="quart_jobs"):
        worker = jobs.start_worker(heartbeat_interval=0.05, shutdown_timeout=5)
        running = await jobs.enqueue(tasks.sleeper, 0.5)
        await asyncio.wait_for(worker.stopped.wait(), timeout=10)
        queued = await jobs.enqueue(tasks.record, "after")
        await jobs.stop_worker(worker)  # waits for the same stop; does not hide the failure
    assert (await jobs.get(running.id)).state is JobState.SUCCEEDED  # drained
    assert (await jobs.get(queued.id)).state is JobState.QUEUED  # no more claims
    assert isinstance(worker.failure, RuntimeError) and not worker.running
    (record,) = [r for r in caplog.records if "heartbeat loop failed" in r.getMessage()]
    assert record.levelname == "ERROR" and record.exc_info is not None


async def test_a_failing_pump_is_logged_and_the_outcomes_still_recorded(
    jobs: Jobs, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = jobs._store.claim_round
    broke = []

    async def once_broken(outcomes: Any, *args: Any) -> Any:
        if outcomes and not broke:
            broke.append(True)
            raise RuntimeError("pump bug")
        return await real(outcomes, *args)

    monkeypatch.setattr(jobs._store, "claim_round", once_broken)
    with caplog.at_level(logging.INFO, logger="quart_jobs"):
        worker = jobs.start_worker(concurrency=2)
        slow = await jobs.enqueue(tasks.sleeper, 0.3)
        quick = await jobs.enqueue(tasks.record, "first")
        await asyncio.wait_for(worker.stopped.wait(), timeout=10)
    assert (await jobs.get(quick.id)).state is JobState.SUCCEEDED
    assert (await jobs.get(slow.id)).state is JobState.SUCCEEDED
    assert isinstance(worker.failure, RuntimeError)
    (record,) = [r for r in caplog.records if "pump loop failed" in r.getMessage()]
    assert record.levelname == "ERROR" and record.exc_info is not None


async def test_a_store_that_is_down_is_a_warning_and_the_worker_runs_on(
    jobs: Jobs, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs._store, "heartbeat", raising(BackendUnavailable("store down")))
    with caplog.at_level(logging.INFO, logger="quart_jobs"):
        async with jobs.run_worker(heartbeat_interval=0.05) as worker:
            job = await jobs.enqueue(tasks.sleeper, 0.3)
            await wait_state(jobs, job.id, JobState.SUCCEEDED)
            assert worker.running and worker.failure is None
    warnings = [r for r in caplog.records if "heartbeat failed" in r.getMessage()]
    assert warnings and {r.levelname for r in warnings} == {"WARNING"}


async def test_the_worker_command_ends_with_exit_1_when_its_worker_fails(
    jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs._store, "heartbeat", raising(RuntimeError("heartbeat bug")))
    job = await jobs.enqueue(tasks.sleeper, 0.3)
    with pytest.raises(Failed, match="internal failure") as failed:
        await asyncio.wait_for(run_worker_until_signal(jobs, heartbeat_interval=0.05), 10)
    assert failed.value.exit_code == 1
    assert (await jobs.get(job.id)).state is JobState.SUCCEEDED  # drained first
