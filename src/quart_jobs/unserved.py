"""Jobs that nobody serves: a worker warns when ready jobs of its queues wait for a task it
does not know, at two checks in a row (SPEC: a task that no worker knows is visible)."""

from __future__ import annotations

import logging
from collections.abc import Collection

from .backends.base import Backend

log = logging.getLogger("quart_jobs.worker")

#: Seconds between two checks; jobs still waiting at the second are reported.
CHECK_EVERY = 60.0


class UnservedWatch:
    """Remembers the previous check's unknown (queue, task) pairs; warns for those still there."""

    def __init__(self, tasks: Collection[str], queues: Collection[str] | None) -> None:
        self._tasks = set(tasks)
        self._queues = None if queues is None else set(queues)
        self._seen: set[tuple[str, str]] = set()
        self.last_check = float("-inf")

    async def check(self, backend: Backend, now: float, worker: str) -> list[tuple[str, str, int]]:
        """Read the ready tasks; warn (and return) the unknown ones seen at the previous check."""
        self.last_check = now
        counts = await backend.ready_tasks()
        unknown = {
            key: n
            for key, n in counts.items()
            if key[1] not in self._tasks and (self._queues is None or key[0] in self._queues)
        }
        stuck = sorted((q, t, n) for (q, t), n in unknown.items() if (q, t) in self._seen)
        self._seen = set(unknown)
        for queue, task, n in stuck:
            log.warning(
                "%d ready jobs of task %r in queue %r have waited over %.0fs: worker %s does not "
                "have that task registered; if no other worker serves it, they stay queued "
                "(start a worker that imports the module defining it)",
                n,
                task,
                queue,
                CHECK_EVERY,
                worker,
            )
        return stuck
