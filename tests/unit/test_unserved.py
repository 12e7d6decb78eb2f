"""Ready jobs that no live worker serves: the pure comparison, and a worker's log warning once
they waited a full check."""

from __future__ import annotations

import logging

import pytest

from quart_jobs.backends.memory.backend import MemoryBackend
from quart_jobs.maintenance.unserved_check import UnservedWatch
from quart_jobs.models import NewJob, UnservedTask, WorkerRecord
from quart_jobs.unserved import unserved


async def test_jobs_of_an_unknown_task_are_reported_at_the_second_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = MemoryBackend()
    await backend.enqueue([NewJob("mine"), NewJob("theirs"), NewJob("theirs")], 0.0)
    await backend.enqueue([NewJob("elsewhere", queue="reports")], 0.0)
    watch = UnservedWatch(["mine"], ["default"])
    with caplog.at_level(logging.WARNING, logger="quart_jobs.worker"):
        assert await watch.check(backend, 0.0, "w1") == []  # just seen: may be served soon
        assert await watch.check(backend, 60.0, "w1") == [("default", "theirs", 2)]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "'theirs'" in record.getMessage() and "does not have that task" in record.getMessage()


def worker(
    name: str, tasks: tuple[str, ...], queues: tuple[str, ...] | None = None
) -> WorkerRecord:
    return WorkerRecord(name, "h", 1, tasks, queues, 4, 0.0, 0.0, 90.0)


def test_with_no_live_worker_every_ready_job_is_unserved() -> None:
    ready = {("default", "a"): 3, ("slow", "b"): 1}
    assert unserved(ready, []) == [
        UnservedTask("default", "a", 3),
        UnservedTask("slow", "b", 1),
    ]


def test_a_task_is_served_by_any_worker_that_has_it_for_that_queue() -> None:
    ready = {("default", "a"): 3, ("slow", "a"): 2, ("slow", "b"): 1, ("default", "c"): 5}
    workers = [worker("w1", ("a",), ("default",)), worker("w2", ("b", "c"))]
    assert unserved(ready, workers) == [UnservedTask("slow", "a", 2, other_queues=True)]


def test_empty_counts_are_not_reported() -> None:
    assert unserved({("default", "a"): 0}, []) == []


def test_the_line_names_the_task_the_queue_and_why() -> None:
    assert UnservedTask("default", "x", 12).describe() == (
        "12 ready jobs of task 'x' in queue 'default': no running worker has that task registered"
    )
    assert "do not claim from that queue" in UnservedTask("q", "x", 1, True).describe()


async def test_a_worker_does_not_warn_about_a_task_another_live_worker_serves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = MemoryBackend()
    await backend.enqueue([NewJob("theirs"), NewJob("nobodys")], 0.0)
    await backend.register_worker(worker("w2", ("theirs",)), 0.0)
    watch = UnservedWatch(["mine"], None)
    me = worker("w1", ("mine",))
    with caplog.at_level(logging.WARNING, logger="quart_jobs.worker"):
        await watch.check(backend, 0.0, "w1", me)
        assert await watch.check(backend, 60.0, "w1", me) == [("default", "nobodys", 1)]
        await backend.remove_worker("w2")  # gone: now its task is unserved too
        await watch.check(backend, 60.0, "w1", me)
        assert await watch.check(backend, 120.0, "w1", me) == [
            ("default", "nobodys", 1),
            ("default", "theirs", 1),
        ]
