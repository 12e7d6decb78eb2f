"""Jobs that nobody serves: ready jobs of a task that no live worker may claim are shown, not
left to wait unseen.

:func:`unserved` compares the ready jobs, counted by (queue, task), with the live-workers
registry (:meth:`Backend.live_workers`): ``stats``, the dashboard and ``/metrics`` show its
answer. A worker also warns in its log about ready jobs of its queues that no live worker
serves (:mod:`quart_jobs.maintenance.unserved_check`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .backends.base import Backend
from .models import UnservedTask, WorkerRecord


def unserved(
    ready: Mapping[tuple[str, str], int], workers: Iterable[WorkerRecord]
) -> list[UnservedTask]:
    """The (queue, task) pairs of ``ready`` (counts of ready jobs) that none of ``workers`` may
    claim, sorted by queue and task."""
    live = list(workers)
    found = []
    for (queue, task), count in sorted(ready.items()):
        if count <= 0 or any(w.serves(queue, task) for w in live):
            continue
        found.append(UnservedTask(queue, task, count, any(task in w.tasks for w in live)))
    return found


async def read_serving(
    backend: Backend, now: float, me: WorkerRecord | None = None
) -> tuple[list[WorkerRecord], list[UnservedTask]]:
    """The live workers and the ready jobs none of them may claim, cheaply: the registry (one
    row per worker), the (queue, priority, task) triples that have ready jobs (one index seek
    each), and a count only for the triples nobody serves. ``me``: a worker's own record,
    counted live even if its latest registry write failed."""
    workers = await backend.live_workers(now)
    if me is not None:
        workers = sorted([w for w in workers if w.name != me.name] + [me], key=lambda w: w.name)
    counts: dict[tuple[str, str], int] = {}
    for queue, priority, task in sorted(await backend.ready_kinds()):
        if not any(w.serves(queue, task) for w in workers):
            n = await backend.ready_count(queue, priority, task)
            counts[(queue, task)] = counts.get((queue, task), 0) + n
    return workers, unserved(counts, workers)


def worker_summary(worker: WorkerRecord, now: float) -> dict[str, Any]:
    """A live worker as JSON-able data (``stats --json``, ``/admin/api/stats``)."""
    return {
        "name": worker.name,
        "host": worker.host,
        "pid": worker.pid,
        "tasks": list(worker.tasks),
        "queues": None if worker.queues is None else list(worker.queues),
        "concurrency": worker.concurrency,
        "started_at": worker.started_at,
        "seen_at": worker.seen_at,
        "seen_seconds_ago": max(0.0, now - worker.seen_at),
    }


def unserved_summary(item: UnservedTask) -> dict[str, Any]:
    """An unserved (queue, task) as JSON-able data, with the line people read."""
    return {
        "queue": item.queue,
        "task": item.task,
        "count": item.count,
        "other_queues": item.other_queues,
        "message": item.describe(),
    }


def tasks_text(tasks: Sequence[str], shown: int = 3) -> str:
    """A worker's tasks in a table cell: the first few, then how many more."""
    if len(tasks) <= shown:
        return ", ".join(tasks) or "-"
    return f"{', '.join(tasks[:shown])} and {len(tasks) - shown} more"
