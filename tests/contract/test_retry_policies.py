"""Retry policies with a real worker on every backend, on the injected clock: ``retry_on``,
``Retry(delay=...)``, ``Fail(...)`` and a task's own backoff each store the run time, ``why``,
error and traceback they promise, log one line that says why, and read the same in
``quart-jobs show``; a lost worker is retried whatever the task's policy."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from quart_jobs import Fail, Jobs, JobState, Retry, RetryPolicy, Why, WorkerSettings, current_job
from quart_jobs.backends import Backend, Outcome
from quart_jobs.backends.sqlite.backend import SQLiteBackend
from quart_jobs.models import Job, Lease, NewJob
from quart_jobs.presenting import outcome_text

from ..conftest import Clock

LEASE = 30.0
#: The worker's own backoff is exactly 0.5 s here (so a test can tell it from a task's).
QUICK = WorkerSettings(
    concurrency=2,
    lease_seconds=LEASE,
    heartbeat_interval=0.01,
    poll_interval=0.01,
    shutdown_timeout=1.0,
    retry=RetryPolicy(base=0.5, max_delay=0.5, min_delay=0.5),
)
PATIENCE = 10.0
ROOT = Path(__file__).resolve().parents[2]


async def bad_sku() -> None:
    raise ValueError("bad sku")


async def connection_reset() -> None:
    raise ConnectionError("reset")


async def ask_retry() -> str:
    if current_job().attempts == 1:
        raise Retry(delay=30)
    return "done"


async def decline() -> None:
    raise Fail("card declined")


async def note() -> None:
    return None


def broken_backoff(attempt: int) -> float:
    raise ZeroDivisionError("no backoff today")


def make_jobs(
    backend: Backend, clock: Clock, backoff: Callable[[int], float] | None = None
) -> Jobs:
    jobs = Jobs(backend, clock=clock, worker_settings=QUICK, max_attempts=3)
    policy = {"retry_on": (ConnectionError, TimeoutError)}
    jobs.task(**policy)(bad_sku)
    jobs.task(**policy, backoff=backoff or (lambda n: 10.0 * n))(connection_reset)
    for func in (ask_retry, decline, note):
        jobs.register(func)
    return jobs


async def until(jobs: Jobs, job_id: int, test: Callable[[Job], bool]) -> Job:
    async with asyncio.timeout(PATIENCE):
        while not test(job := await jobs.get(job_id)):
            await asyncio.sleep(0.005)
    return job


async def logged(caplog: pytest.LogCaptureFixture, job_id: int) -> logging.LogRecord:
    """The log line of the job's recorded outcome (written just after the store took it)."""
    async with asyncio.timeout(PATIENCE):
        while True:
            found = [r for r in caplog.records if getattr(r, "job_id", None) == job_id]
            ended = [r for r in found if hasattr(r, "why")]
            if ended:
                return ended[-1]
            await asyncio.sleep(0.005)


async def test_retry_on_fails_any_other_exception_at_once_and_retries_the_named_ones(
    backend: Backend, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "quart_jobs.worker")
    jobs = make_jobs(backend, clock)
    async with jobs.run_worker():
        bad = await jobs.enqueue(bad_sku)
        reset = await jobs.enqueue(connection_reset)
        failed = await until(jobs, bad.id, lambda j: j.state is JobState.FAILED)
        queued = await until(jobs, reset.id, lambda j: j.why is Why.BACKOFF)
    assert (failed.attempts, failed.why, failed.error) == (
        1,
        Why.NOT_RETRYABLE,
        "ValueError: bad sku",
    )
    assert failed.traceback is not None and 'raise ValueError("bad sku")' in failed.traceback
    text = "failed: ValueError: bad sku — not retried (not in retry_on)"
    assert outcome_text(failed) == text
    line = await logged(caplog, bad.id)
    assert (line.levelno, line.why, line.getMessage().endswith(text)) == (
        logging.WARNING,
        "not_retryable",
        True,
    )
    # The named exception is retried, after the task's own backoff (10 s for attempt 1).
    assert queued.state is JobState.QUEUED and queued.attempts == 1
    assert queued.started_at is not None and queued.run_at - queued.started_at == pytest.approx(10)
    assert queued.error == "ConnectionError: reset" and queued.traceback is not None
    assert (outcome_text(queued) or "").startswith("attempt 1/3 failed: ConnectionError: reset")
    assert (outcome_text(queued) or "").endswith("(backoff)")
    assert (await logged(caplog, reset.id)).levelno == logging.INFO


async def test_retry_delay_runs_the_next_attempt_after_the_delay_and_not_before(
    backend: Backend, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "quart_jobs.worker")
    jobs = make_jobs(backend, clock)
    async with jobs.run_worker():
        job = await jobs.enqueue(ask_retry)
        asked = await until(jobs, job.id, lambda j: j.why is Why.RETRY_REQUESTED)
        assert asked.state is JobState.QUEUED and asked.attempts == 1
        assert asked.started_at is not None
        assert asked.run_at - asked.started_at == pytest.approx(30)
        assert asked.error == "Retry(delay=30)"
        assert "(the task asked: Retry(delay=30))" in (outcome_text(asked) or "")
        line = await logged(caplog, job.id)
        assert line.why == "retry_requested"
        assert "the task asked: Retry(delay=30)" in line.getMessage()
        clock.advance(29.9)
        probe = await jobs.enqueue(note)  # a claim at +29.9 s goes past the retried job
        await until(jobs, probe.id, lambda j: j.state is JobState.SUCCEEDED)
        still = await jobs.get(job.id)
        assert (still.state, still.attempts) == (JobState.QUEUED, 1)
        clock.advance(0.1)
        done = await until(jobs, job.id, lambda j: j.state is JobState.SUCCEEDED)
    assert (done.attempts, done.result, done.why) == (2, "done", None)


async def test_retry_with_no_attempt_left_fails_the_job(backend: Backend, clock: Clock) -> None:
    jobs = make_jobs(backend, clock)
    async with jobs.run_worker():
        job = await jobs.options(max_attempts=1).enqueue(ask_retry)
        failed = await until(jobs, job.id, lambda j: j.state is JobState.FAILED)
    assert (failed.why, failed.error) == (Why.GAVE_UP, "Retry(delay=30)")
    assert outcome_text(failed) == "failed: Retry(delay=30) — gave up after attempt 1/1"


async def test_fail_ends_the_job_now_whatever_attempts_remain(
    backend: Backend, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "quart_jobs.worker")
    jobs = make_jobs(backend, clock)
    async with jobs.run_worker():
        job = await jobs.options(max_attempts=4).enqueue(decline)
        failed = await until(jobs, job.id, lambda j: j.state is JobState.FAILED)
    assert (failed.attempts, failed.why, failed.error) == (
        1,
        Why.FAILED_BY_TASK,
        "Fail: card declined",
    )
    assert failed.traceback is not None and 'raise Fail("card declined")' in failed.traceback
    assert failed.finished_at is not None
    text = "failed by the task: Fail: card declined, 3 attempts left"
    assert outcome_text(failed) == text
    line = await logged(caplog, job.id)
    assert line.levelno == logging.WARNING and line.getMessage().endswith(text)


@pytest.mark.parametrize(
    "backoff",
    [broken_backoff, lambda n: -1.0, lambda n: math.nan, lambda n: math.inf],
    ids=["raises", "negative", "nan", "infinite"],
)
async def test_a_broken_backoff_warns_once_and_the_worker_s_backoff_applies(
    backend: Backend, clock: Clock, caplog: pytest.LogCaptureFixture, backoff: Any
) -> None:
    caplog.set_level(logging.INFO, "quart_jobs.worker")
    jobs = make_jobs(backend, clock, backoff=backoff)
    async with jobs.run_worker():
        job = await jobs.enqueue(connection_reset)
        queued = await until(jobs, job.id, lambda j: j.why is Why.BACKOFF)
        await logged(caplog, job.id)
    assert queued.started_at is not None
    assert queued.run_at - queued.started_at == pytest.approx(0.5)  # QUICK's backoff
    warnings = [r for r in caplog.records if "backoff(1)" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "connection_reset" in warnings[0].getMessage()


async def test_a_lost_worker_is_retried_up_to_max_attempts_whatever_the_policy(
    backend: Backend, clock: Clock
) -> None:
    jobs = make_jobs(backend, clock)  # bad_sku retries nothing but connection errors
    (created,) = await backend.enqueue(
        [NewJob("tests.contract.test_retry_policies.bad_sku", max_attempts=2)], clock()
    )
    job_id = created.job.id
    for attempt in (1, 2):
        (claimed,) = await backend.claim("w-lost", 1, clock(), LEASE)
        assert claimed.id == job_id
        clock.advance(LEASE + 1)
        assert await backend.recover_expired(clock()) == 1
        job = await jobs.get(job_id)
        assert job.why is Why.LEASE_EXPIRED and job.attempts == attempt
        if attempt == 1:
            assert job.state is JobState.QUEUED
            assert outcome_text(job) == (
                "attempt 1/2 lost: lease expired: worker w-lost stopped answering — runs again"
            )
    assert job.state is JobState.FAILED
    assert outcome_text(job) == (
        "failed: lease expired: worker w-lost stopped answering — on its last attempt (attempt 2/2)"
    )


async def test_a_cancel_says_why_and_an_operator_retry_clears_it(
    backend: Backend, clock: Clock
) -> None:
    jobs = make_jobs(backend, clock)
    job = await jobs.enqueue(note)
    cancelled = await jobs.cancel(job.id)
    assert cancelled is not None
    assert ((await jobs.get(job.id)).why, outcome_text(await jobs.get(job.id))) == (
        Why.CANCELLED,
        "cancelled",
    )
    await jobs.retry(job.id)
    assert (await jobs.get(job.id)).why is None


def _show(backend: Backend, *args: str) -> subprocess.CompletedProcess[str]:
    """``quart-jobs show`` in a process of its own, on ``backend``'s store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUART_", "DATABASE_URL"))}
    if isinstance(backend, SQLiteBackend):
        env["RETRY_STORE_URL"] = f"sqlite:///{backend.path}"
    else:
        env["RETRY_STORE_URL"] = backend.url
        env["RETRY_STORE_SCHEMA"] = backend.schema
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "quart-jobs"),
            "--app",
            "tests.contract.retry_store:jobs",
            "show",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


async def test_show_tells_each_outcome_and_why(backend: Backend, clock: Clock) -> None:
    if backend.scheme == "memory":
        pytest.skip("the memory store lives in this process only: no command can read it")
    jobs = make_jobs(backend, clock)
    async with jobs.run_worker():
        bad = await jobs.enqueue(bad_sku)
        declined = await jobs.options(max_attempts=4).enqueue(decline)
        asked = await jobs.enqueue(ask_retry)
        await until(jobs, bad.id, lambda j: j.state is JobState.FAILED)
        await until(jobs, declined.id, lambda j: j.state is JobState.FAILED)
        await until(jobs, asked.id, lambda j: j.why is Why.RETRY_REQUESTED)
    expected = {
        bad.id: ("not_retryable", "failed: ValueError: bad sku — not retried (not in retry_on)"),
        declined.id: (
            "failed_by_task",
            "failed by the task: Fail: card declined, 3 attempts left",
        ),
        asked.id: ("retry_requested", "(the task asked: Retry(delay=30))"),
    }
    for job_id, (why, text) in expected.items():
        shown = await asyncio.to_thread(_show, backend, str(job_id))
        assert shown.returncode == 0, shown.stderr
        (line,) = [x for x in shown.stdout.splitlines() if x.strip().startswith("outcome:")]
        assert text in line
        assert f"why: {why}" in shown.stdout
        as_json = await asyncio.to_thread(_show, backend, str(job_id), "--json")
        data = json.loads(as_json.stdout)
        assert data["why"] == why and text in data["outcome"]


async def test_outcomes_recorded_together_keep_each_why(backend: Backend, clock: Clock) -> None:
    jobs = make_jobs(backend, clock)
    await backend.enqueue([NewJob("t"), NewJob("t"), NewJob("t")], clock())
    claimed = await backend.claim("w", 3, clock(), LEASE)
    whys = [Why.NOT_RETRYABLE, Why.FAILED_BY_TASK, Why.GAVE_UP]
    outcomes = [
        Outcome(Lease(j.id, j.lease_token or ""), JobState.FAILED, error="E: x", why=why)
        for j, why in zip(claimed, whys, strict=True)
    ]
    assert await backend.finish(outcomes, clock()) == [True] * 3  # one statement on PostgreSQL
    assert [(await jobs.get(j.id)).why for j in claimed] == whys
