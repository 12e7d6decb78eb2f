"""Jobs and the worker end to end, on the memory and SQLite backends, with real time."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging

import pytest

from quart_jobs import (
    ArgumentsNotSerializable,
    Jobs,
    JobState,
    PayloadTooLarge,
    TaskNotRegistered,
    TaskRegistrationError,
    Tier,
)
from quart_jobs.models import NewJob

from ..conftest import Clock
from . import tasks
from .conftest import wait_state


async def test_async_and_sync_tasks_run_and_keep_their_results(jobs: Jobs) -> None:
    async with jobs.run_worker():
        a = await jobs.enqueue(tasks.record, {"x": 1})
        s = await jobs.enqueue("tests.integration.tasks.sync_record", "y")
        await wait_state(jobs, a.id, JobState.SUCCEEDED)
        await wait_state(jobs, s.id, JobState.SUCCEEDED)
    assert (await jobs.get(a.id)).result == {"echo": {"x": 1}}
    assert (await jobs.get(s.id)).result.startswith("quart-jobs-sync")


async def test_a_failing_job_is_retried_then_succeeds(jobs: Jobs) -> None:
    async with jobs.run_worker():
        job = await jobs.enqueue(tasks.flaky, 2)
        await wait_state(jobs, job.id, JobState.SUCCEEDED)
    done = await jobs.get(job.id)
    assert done.attempts == 3 and done.result == 3


async def test_a_job_out_of_attempts_fails_with_its_error_and_traceback(jobs: Jobs) -> None:
    async with jobs.run_worker():
        job = await jobs.enqueue(tasks.flaky, 10)
        await wait_state(jobs, job.id, JobState.FAILED)
    failed = await jobs.get(job.id)
    assert failed.attempts == 3
    assert failed.error == "ValueError: attempt 3 fails"
    assert failed.traceback and "raise ValueError" in failed.traceback
    retried = await jobs.retry(job.id)
    assert retried.state is JobState.QUEUED and retried.attempts == 0


async def test_per_task_timeout_fails_the_attempt(jobs: Jobs) -> None:
    async with jobs.run_worker():
        job = await jobs.options(timeout=0.05, max_attempts=1).enqueue(tasks.sleeper, 5)
        await wait_state(jobs, job.id, JobState.FAILED)
    assert "timeout" in ((await jobs.get(job.id)).error or "")


async def test_graceful_stop_requeues_unfinished_jobs_without_charging_an_attempt(
    jobs: Jobs,
) -> None:
    worker = jobs.start_worker(concurrency=1, shutdown_timeout=0.1)
    long = await jobs.enqueue(tasks.sleeper, 30)
    waiting = await jobs.enqueue(tasks.record, 1)
    await wait_state(jobs, long.id, JobState.RUNNING)
    await jobs.stop_worker(worker)
    back = await jobs.get(long.id)
    assert back.state is JobState.QUEUED and back.attempts == 0
    assert (await jobs.get(waiting.id)).state is JobState.QUEUED
    async with jobs.run_worker():
        await wait_state(jobs, waiting.id, JobState.SUCCEEDED)


async def test_graceful_stop_lets_short_jobs_finish(jobs: Jobs) -> None:
    worker = jobs.start_worker(shutdown_timeout=5)
    job = await jobs.enqueue(tasks.sleeper, 0.3)
    await wait_state(jobs, job.id, JobState.RUNNING)
    await jobs.stop_worker(worker)
    assert (await jobs.get(job.id)).state is JobState.SUCCEEDED


async def test_cancel_a_running_job(jobs: Jobs) -> None:
    async with jobs.run_worker():
        job = await jobs.enqueue(tasks.sleeper, 30)
        await wait_state(jobs, job.id, JobState.RUNNING)
        await jobs.cancel(job.id)
        await wait_state(jobs, job.id, JobState.CANCELLED)
        # The task itself was interrupted, while the worker runs on (not by its shutdown).
        assert ("sleeper-cancelled", job.id) in tasks.calls
    cancelled = await jobs.get(job.id)
    assert (cancelled.attempts, cancelled.error) == (1, "cancelled while running")


async def test_delayed_job_runs_after_its_delay(jobs: Jobs) -> None:
    clock = jobs.clock = Clock()  # the worker started below runs on it too
    async with jobs.run_worker():
        job = await jobs.options(delay=30).enqueue(tasks.record, "later")
        ready = await jobs.enqueue(tasks.record, "now")
        await wait_state(jobs, ready.id, JobState.SUCCEEDED)  # a claim went past the delayed job
        assert (await jobs.get(job.id)).state is JobState.QUEUED
        clock.advance(30)
        await wait_state(jobs, job.id, JobState.SUCCEEDED)
    done = await jobs.get(job.id)
    assert done.started_at is not None and done.started_at >= job.run_at


async def test_job_options_never_collide_with_task_keyword_arguments(jobs: Jobs) -> None:
    job = await jobs.options(priority="vip", key="k1").enqueue(
        tasks.with_options, priority="p", timeout=1, key="k", delay=2
    )
    assert job.priority == Tier.VIP and job.key == "k1" and job.timeout is None
    assert dict(job.kwargs) == {"priority": "p", "timeout": 1, "key": "k", "delay": 2}
    async with jobs.run_worker():
        await wait_state(jobs, job.id, JobState.SUCCEEDED)
    assert (await jobs.get(job.id)).result == ["p", 1, "k", 2]


async def test_a_partial_of_a_registered_task_is_enqueued_with_merged_arguments(
    jobs: Jobs,
) -> None:
    job = await jobs.enqueue(functools.partial(tasks.with_options, "p", 1), key="k", delay=2)
    assert job.task == "tests.integration.tasks.with_options"
    assert job.args == ("p", 1) and dict(job.kwargs) == {"key": "k", "delay": 2}


async def test_a_called_task_is_refused_with_the_call_to_write_instead(jobs: Jobs) -> None:
    called = tasks.record({"x": 1})  # a coroutine object, as asyncio.create_task would take
    with pytest.raises(TaskNotRegistered) as refused:
        await jobs.enqueue(called)
    assert "enqueue(record, *args, **kwargs), not enqueue(record(*args, **kwargs))" in str(
        refused.value
    )
    assert inspect.getcoroutinestate(called) == inspect.CORO_CLOSED  # no "never awaited"
    in_tx = tasks.record(2)
    with pytest.raises(TaskNotRegistered, match=r"enqueue\(record, \*args"):
        await jobs.transaction(lambda tx: tx.enqueue(in_tx))
    assert inspect.getcoroutinestate(in_tx) == inspect.CORO_CLOSED
    with pytest.raises(TaskNotRegistered, match=r"\{'echo': 1\} is not a task but a value"):
        await jobs.enqueue({"echo": 1})  # what a sync task's call returned
    assert await jobs.list() == []


async def test_unregistered_lambda_closure_and_non_json_are_refused_clearly(jobs: Jobs) -> None:
    with pytest.raises(TaskNotRegistered, match=r"@jobs\.task"):
        await jobs.enqueue(lambda: None)

    def local() -> None: ...

    with pytest.raises(TaskRegistrationError, match="module level"):
        jobs.register(local)
    with pytest.raises(TaskNotRegistered, match="no task named 'nope'"):
        await jobs.enqueue("nope")
    with pytest.raises(ArgumentsNotSerializable, match="must be JSON"):
        await jobs.enqueue(tasks.record, object())
    with pytest.raises(ArgumentsNotSerializable):
        await jobs.enqueue(tasks.record, float("nan"))
    with pytest.raises(PayloadTooLarge, match="limit"):
        await jobs.enqueue(tasks.record, "x" * 100_000)
    assert await jobs.list() == []


async def test_vip_jobs_start_first_with_one_slot(jobs: Jobs) -> None:
    regular = [await jobs.enqueue(tasks.sleeper, 0) for _ in range(3)]
    vip = [await jobs.options(priority=Tier.VIP).enqueue(tasks.sleeper, 0) for _ in range(3)]
    async with jobs.run_worker(concurrency=1):
        for job in regular:
            await wait_state(jobs, job.id, JobState.SUCCEEDED)
    starts = [value for event, value in tasks.calls if event == "sleeper-start"]
    # The first VIP job goes ahead of every waiting regular job; the regular tier, waiting
    # already, then gets its one start, and VIP jobs have up to 9 starts per regular start.
    assert starts == [vip[0].id, regular[0].id, vip[1].id, vip[2].id, regular[1].id, regular[2].id]


async def test_a_worker_claims_only_its_tasks_and_queues(jobs: Jobs) -> None:
    elsewhere = await jobs.options(queue="reports").enqueue(tasks.sleeper, 0)
    (unknown,) = await jobs._store.enqueue([NewJob("some.other.service.task")], jobs.clock())
    unknown = unknown.job
    mine = await jobs.enqueue(tasks.sleeper, 0)
    async with jobs.run_worker(concurrency=2, queues=["default"]):
        await wait_state(jobs, mine.id, JobState.SUCCEEDED)
    for job_id in (elsewhere.id, unknown.id):
        waiting = await jobs.get(job_id)
        assert (waiting.state, waiting.attempts) == (JobState.QUEUED, 0)


async def test_a_worker_that_lost_its_lease_cannot_record_its_late_result(
    jobs: Jobs, caplog: pytest.LogCaptureFixture
) -> None:
    tasks.release.clear()
    # No heartbeat after the first: the worker learns of the loss only when it writes.
    worker = jobs.start_worker(concurrency=1, heartbeat_interval=60)
    try:
        job = await jobs.enqueue(tasks.sync_blocked)
        await wait_state(jobs, job.id, JobState.RUNNING)
        # The lease runs out (as if this worker had hung) and another worker takes the job over.
        backend = jobs._store
        later = jobs.clock() + 60
        assert await backend.recover_expired(later) == 1
        (taken,) = await backend.claim("other-worker", 1, later, 60)
        assert taken.id == job.id
        with caplog.at_level("WARNING", logger="quart_jobs.worker"):
            tasks.release.set()  # the first worker finishes its (stale) attempt
            async with asyncio.timeout(5):
                while not any("write refused" in r.getMessage() for r in caplog.records):
                    await asyncio.sleep(0.01)
    finally:
        tasks.release.set()
        await jobs.stop_worker(worker)
    current = await jobs.get(job.id)
    assert current.state is JobState.RUNNING and current.worker == "other-worker"
    assert current.lease_token == taken.lease_token


async def test_a_worker_on_a_queue_no_task_uses_warns_with_the_known_queues(
    jobs: Jobs, caplog: pytest.LogCaptureFixture
) -> None:
    jobs.task(name="mail.send", queue="emails")(tasks.record)
    with caplog.at_level(logging.WARNING, logger="quart_jobs"):
        async with jobs.run_worker(queues=["emails", "nosuch"]):
            pass
        async with jobs.run_worker(queues=["emails", "default"]):
            pass
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [
        "a worker claims from queue nosuch that no registered task uses (the tasks' queues: "
        "default, emails); only jobs enqueued with options(queue=...) reach it"
    ]
