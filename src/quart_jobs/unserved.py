"""Jobs that nobody serves (SPEC: a task that no worker knows is visible).

:func:`unserved` compares the ready jobs, counted by (queue, task), with the live-workers
registry (:meth:`Backend.live_workers`): ``stats``, the dashboard and ``/metrics`` show its
answer. A worker also warns in its log about ready jobs of its queues that no live worker
serves, once they are still there at a second check (:class:`UnservedWatch`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from .backends.base import Backend
from .models import UnservedTask, WorkerRecord

log = logging.getLogger("quart_jobs.worker")

#: Seconds between two checks; jobs still waiting at the second are reported.
CHECK_EVERY = 60.0
#: A worker's registry row expires after this many lease intervals without a heartbeat.
EXPIRY_LEASES = 3.0


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


class UnservedWatch:
    """Remembers the previous check's unserved (queue, task) pairs of this worker's queues;
    warns for those still there."""

    def __init__(self, tasks: Collection[str], queues: Collection[str] | None) -> None:
        self._tasks = set(tasks)
        self._queues = None if queues is None else set(queues)
        self._seen: set[tuple[str, str]] = set()
        self.last_check = float("-inf")

    async def check(
        self, backend: Backend, now: float, worker: str, me: WorkerRecord | None = None
    ) -> list[tuple[str, str, int]]:
        """Read the ready tasks and the live workers (``me``: this worker's own record, counted
        live even if its last registry write failed); warn (and return) the unserved pairs of
        this worker's queues already seen at the previous check."""
        self.last_check = now
        _, waiting = await read_serving(backend, now, me)
        unknown = {
            (u.queue, u.task): u.count
            for u in waiting
            if u.task not in self._tasks and (self._queues is None or u.queue in self._queues)
        }
        stuck = sorted((q, t, n) for (q, t), n in unknown.items() if (q, t) in self._seen)
        self._seen = set(unknown)
        for queue, task, n in stuck:
            log.warning(
                "%d ready jobs of task %r in queue %r have waited over %.0fs: no running worker "
                "serves that task (worker %s does not have that task registered); they stay queued "
                "until a worker that imports the module defining it runs",
                n,
                task,
                queue,
                CHECK_EVERY,
                worker,
            )
        return stuck


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
