"""``GET /metrics`` of a small app with the metrics (:mod:`.admin_app`), parsed with
prometheus-client's own parser and checked against the database."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_jobs import JobState, get_jobs
from quart_jobs.metrics import LIVE_STATES
from quart_jobs.models import WaitReason, WorkerRecord

from . import admin_app
from .admin_app import TASK
from .conftest import admin_url

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def app_for(tmp_path: Path, **options: Any) -> Quart:
    return admin_app.create_app(admin_url(tmp_path), **{"max_attempts": 2, **options})


@pytest.fixture
async def idle_app(tmp_path: Path) -> AsyncIterator[Quart]:
    """No embedded worker: jobs stay queued."""
    app = app_for(tmp_path)
    async with app.test_app():
        yield app


async def scrape(client: Client) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(await response.get_data(True)):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def place(app: Quart, tier: str, fail_times: int = 0) -> int:
    """One job of the app's task in ``tier``, failing its first ``fail_times`` attempts."""
    return (await admin_app.enqueue(get_jobs(app), tier, 0, 0, fail_times)).id


async def wait_state(app: Quart, job_id: int, state: JobState) -> None:
    jobs = get_jobs(app)
    async with asyncio.timeout(10):
        while (await jobs.get(job_id)).state is not state:
            await asyncio.sleep(0.02)


def db_depth(tmp_path: Path) -> dict[tuple[str, str], int]:
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as conn:
        rows = conn.execute("SELECT state, priority, COUNT(*) FROM qj_jobs GROUP BY 1, 2")
        return {(state, {0: "vip", 10: "regular"}[p]): n for state, p, n in rows}


async def test_counters_and_histograms_follow_the_jobs_run(tmp_path: Path) -> None:
    app = app_for(tmp_path, embedded_worker=True)
    async with app.test_app():
        client = app.test_client()
        ok = await place(app, "vip")
        doomed = await place(app, "regular", fail_times=5)  # fails twice: retried, failed
        await wait_state(app, ok, JobState.SUCCEEDED)
        await wait_state(app, doomed, JobState.FAILED)
        samples = await scrape(client)

    def count(event: str, tier: str) -> float:
        return value(samples, f"quart_jobs_{event}_total", task=TASK, tier=tier)

    assert (count("enqueued", "vip"), count("enqueued", "regular")) == (1, 1)
    assert (count("started", "vip"), count("started", "regular")) == (1, 2)
    assert count("succeeded", "vip") == 1 and count("succeeded", "regular") == 0
    assert count("retried", "regular") == 1 and count("failed", "regular") == 1
    assert count("failed", "vip") == 0 and count("cancelled", "regular") == 0
    assert value(samples, "quart_jobs_run_seconds_count", tier="vip") == 1
    assert value(samples, "quart_jobs_run_seconds_count", tier="regular") == 2
    assert value(samples, "quart_jobs_wait_seconds_count", tier="regular") == 2
    # Every observation falls in the +Inf bucket; the retry waited for its backoff, not its
    # enqueue: the wait is measured from max(enqueued_at, run_at).
    assert value(samples, "quart_jobs_wait_seconds_bucket", tier="vip", le="+Inf") == 1
    assert value(samples, "quart_jobs_wait_seconds_sum", tier="regular") < 5
    assert value(samples, "quart_jobs_store_up") == 1
    # Finished jobs are the counters' business: the depth gauge reports live jobs only.
    assert not any(
        name == "quart_jobs_queue_depth" and ("state", "succeeded") in labels
        for name, labels in samples
    )


async def test_gauges_match_the_database(idle_app: Quart, tmp_path: Path) -> None:
    client = idle_app.test_client()
    for _ in range(3):
        await place(idle_app, "regular")
    await asyncio.sleep(0.3)
    for _ in range(2):
        await place(idle_app, "vip")
    cancelled = await place(idle_app, "vip")
    jobs = get_jobs(idle_app)
    assert (await jobs.cancel(cancelled)).state is JobState.CANCELLED
    await jobs._store.claim("w", 1, jobs.clock(), 30)  # one VIP job running

    samples = await scrape(client)
    expected = db_depth(tmp_path)
    for state in LIVE_STATES:
        for tier in ("vip", "regular"):
            got = value(samples, "quart_jobs_queue_depth", state=state.value, tier=tier)
            assert got == expected.get((state.value, tier), 0), (state, tier)
    assert value(samples, "quart_jobs_queue_depth", state="queued", tier="regular") == 3
    assert value(samples, "quart_jobs_queue_depth", state="running", tier="vip") == 1

    with sqlite3.connect(tmp_path / "jobs.sqlite3") as conn:
        (oldest_regular,) = conn.execute(
            "SELECT MIN(enqueued_at) FROM qj_jobs WHERE state = 'queued' AND priority = 10"
        ).fetchone()
    age = value(samples, "quart_jobs_oldest_waiting_seconds", tier="regular")
    assert age == pytest.approx(jobs.clock() - oldest_regular, abs=0.5)
    assert age >= 0.3
    assert 0 <= value(samples, "quart_jobs_oldest_waiting_seconds", tier="vip") < age
    assert value(samples, "quart_jobs_enqueued_total", task=TASK, tier="vip") == 3
    assert value(samples, "quart_jobs_cancelled_total", task=TASK, tier="vip") == 1

    # Within max_age a scrape serves the cached gauges (the counters are always live) ...
    await place(idle_app, "regular")
    cached = await scrape(client)
    assert value(cached, "quart_jobs_queue_depth", state="queued", tier="regular") == 3
    assert value(cached, "quart_jobs_enqueued_total", task=TASK, tier="regular") == 4
    # ... and once it has passed, the next scrape reads the database again.
    idle_app.extensions["quart_jobs_metrics"].max_age = 0
    again = await scrape(client)
    assert value(again, "quart_jobs_queue_depth", state="queued", tier="regular") == 4


async def test_an_empty_queue_reports_zero_not_nothing(idle_app: Quart) -> None:
    samples = await scrape(idle_app.test_client())
    for tier in ("vip", "regular"):
        assert ("quart_jobs_oldest_waiting_seconds", frozenset({("tier", tier)})) in samples
        for state in LIVE_STATES:
            key = ("quart_jobs_queue_depth", frozenset({("state", state.value), ("tier", tier)}))
            assert samples[key] == 0


async def test_two_apps_in_one_process_keep_their_own_metrics(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = app_for(tmp_path / "a")
    second = app_for(tmp_path / "b")
    async with first.test_app(), second.test_app():
        await place(first, "vip")
        one = await scrape(first.test_client())
        other = await scrape(second.test_client())
    assert value(one, "quart_jobs_enqueued_total", task=TASK, tier="vip") == 1
    assert value(other, "quart_jobs_enqueued_total", task=TASK, tier="vip") == 0


async def test_a_store_that_cannot_answer_reports_store_up_zero(idle_app: Quart) -> None:
    jobs = get_jobs(idle_app)
    real = jobs.operator.queue_gauges

    async def broken() -> Any:
        raise RuntimeError("database is gone")

    jobs.operator.queue_gauges = broken  # type: ignore[method-assign]
    try:
        samples = await scrape(idle_app.test_client())
    finally:
        jobs.operator.queue_gauges = real  # type: ignore[method-assign]
    assert value(samples, "quart_jobs_store_up") == 0
    assert not any(name == "quart_jobs_queue_depth" for name, _ in samples)


async def test_many_concurrent_scrapes_cost_one_database_read(idle_app: Quart) -> None:
    jobs = get_jobs(idle_app)
    real = jobs.operator.queue_gauges
    reads = 0

    async def counted() -> Any:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.05)  # a slow store: every scrape below arrives while it reads
        return await real()

    jobs.operator.queue_gauges = counted  # type: ignore[method-assign]
    client = idle_app.test_client()
    try:
        results = await asyncio.gather(*(scrape(client) for _ in range(20)))
    finally:
        jobs.operator.queue_gauges = real  # type: ignore[method-assign]
    assert reads == 1
    assert all(value(r, "quart_jobs_store_up") == 1 for r in results)


@pytest.mark.parametrize("app_options", [{"metrics_token": "m" * 20}])
async def test_a_metrics_token_guards_the_scrape(client: Client) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + "m" * 20}):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert (await response.get_json())["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    ok = await client.get("/metrics", headers={"Authorization": "Bearer " + "m" * 20})
    assert ok.status_code == 200 and b"quart_jobs_store_up 1.0" in await ok.get_data()


async def test_ready_jobs_nobody_serves_and_the_live_workers_are_gauges(
    idle_app: Quart, tmp_path: Path
) -> None:
    # No embedded worker: every ready job is unserved, and no worker is live.
    client = idle_app.test_client()
    for _ in range(2):
        await place(idle_app, "regular")
    samples = await scrape(client)
    assert value(samples, "quart_jobs_workers") == 0
    assert value(samples, "quart_jobs_unserved_jobs", queue="default", task=TASK) == 2

    # A worker of another process, registered in the same store, that has the task: served.
    jobs = get_jobs(idle_app)
    now = jobs.clock()
    other = WorkerRecord("elsewhere", "h", 1, (TASK,), None, 4, now, now, now + 90)
    await jobs._store.register_worker(other, now)
    idle_app.extensions["quart_jobs_metrics"].max_age = 0
    samples = await scrape(client)
    assert value(samples, "quart_jobs_workers") == 1
    assert not any(name == "quart_jobs_unserved_jobs" for name, _ in samples)


async def test_why_jobs_wait_is_a_gauge_per_queue_and_reason(idle_app: Quart) -> None:
    jobs = get_jobs(idle_app)
    client = idle_app.test_client()
    idle_app.extensions["quart_jobs_metrics"].max_age = 0
    await place(idle_app, "regular")
    await place(idle_app, "regular")
    await jobs.options(delay=60).enqueue(TASK)
    await jobs.options(queue="reports").enqueue(TASK)
    # No worker is live: the ready jobs are unserved; the delayed one is not due.
    samples = await scrape(client)
    gauge = "quart_jobs_waiting_jobs"
    assert value(samples, gauge, queue="default", reason="unserved") == 2
    assert value(samples, gauge, queue="default", reason="not_due") == 1
    assert value(samples, gauge, queue="reports", reason="unserved") == 1
    # Every reason of a known queue is reported, 0 when none holds a job: bounded labels.
    reported = {dict(labels)["reason"] for name, labels in samples if name == gauge}
    assert reported == {r.value for r in WaitReason}
    assert {dict(labels)["queue"] for name, labels in samples if name == gauge} == {
        "default",
        "reports",
    }
    # A paused queue holds its ready jobs first, whoever serves them.
    await jobs.pause("reports")
    samples = await scrape(client)
    assert value(samples, gauge, queue="reports", reason="paused") == 1
    assert value(samples, gauge, queue="reports", reason="unserved") == 0
