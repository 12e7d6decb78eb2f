"""The unserved check: a worker warns in its log about ready jobs of its queues that no live
worker serves (a task no running worker has registered), once they are still there at a
second check, :data:`CHECK_EVERY` seconds after the first.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from ..backends.base import Backend
from ..models import WorkerRecord
from ..unserved import read_serving

log = logging.getLogger("quart_jobs.worker")

#: Seconds between two checks; jobs still waiting at the second are reported.
CHECK_EVERY = 60.0


class UnservedWatch:
    """Remembers the previous check's unserved (queue, task) pairs of this worker's queues;
    warns for those still there."""

    def __init__(self, tasks: Collection[str], queues: Collection[str] | None) -> None:
        self._tasks = set(tasks)
        self._queues = None if queues is None else set(queues)
        self._seen: set[tuple[str, str]] = set()
        self.last_check = float("-inf")

    def due(self, now: float) -> bool:
        """Whether :data:`CHECK_EVERY` seconds passed since the last check."""
        return now - self.last_check >= CHECK_EVERY

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
