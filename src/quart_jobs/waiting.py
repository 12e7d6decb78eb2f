"""Waiting for a job to end: ``await jobs.wait(job_id, timeout=...)``.

A waiter reads the job, and when it has not ended yet, sleeps until something says it may
have: the worker of this process records an outcome (an in-process wake-up), or the store
announces finished jobs (PostgreSQL's ``NOTIFY`` on the jobs' finish; the memory backend
directly). Stores that announce nothing across processes (SQLite) are read again with a
backed-off pause: 10 ms, doubling up to 1 s. Stores that do announce are still read every
few seconds, so a notification lost with a connection costs a few seconds, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection, Iterator

from .backends.base import Backend
from .models import Job

#: The first pause between two reads of a job that has not ended, for stores without
#: notifications; it doubles after each read, up to :data:`MAX_POLL`.
FIRST_POLL = 0.01
MAX_POLL = 1.0
#: The pause between two reads when the store notifies finished jobs (a safety net).
NOTIFIED_POLL = 5.0


class Waiters:
    """The jobs this process waits for, and the events that wake their waiters."""

    def __init__(self) -> None:
        self._events: dict[int, set[asyncio.Event]] = {}
        self._watched: Backend | None = None  # the store whose finishes wake the waiters
        self._notified = False  # does it announce other processes' finishes?

    async def wait(
        self,
        store: Backend,
        job_id: int,
        read: Callable[[], Awaitable[Job]],
        timeout: float | None,
    ) -> Job:
        """``read()`` the job until it has ended (:func:`wait_until_finished`), woken by this
        process's outcomes and, from the first wait on, by the finishes ``store`` announces."""
        if self._watched is None:
            self._watched, self._notified = store, store.watch_finished(self.wake)
        with self.watch(job_id) as woken:
            return await wait_until_finished(read, woken, timeout, notified=self._notified)

    def unwatch(self) -> None:
        """Stop watching the store's finishes (the next wait watches again)."""
        if self._watched is not None:
            self._watched.unwatch_finished(self.wake)
            self._watched = None

    @contextlib.contextmanager
    def watch(self, job_id: int) -> Iterator[asyncio.Event]:
        """An event set whenever ``job_id`` may have ended, while the block runs."""
        event = asyncio.Event()
        self._events.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._events.get(job_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._events[job_id]

    def wake(self, job_ids: Collection[int] | None) -> None:
        """Wake the waiters of ``job_ids`` (``None``: every waiter, "anything may have ended")."""
        if job_ids is None:
            chosen = list(self._events.values())
        else:
            chosen = [self._events[i] for i in job_ids if i in self._events]
        for events in chosen:
            for event in events:
                event.set()

    def __len__(self) -> int:
        return len(self._events)


async def wait_until_finished(
    read: Callable[[], Awaitable[Job]],
    woken: asyncio.Event,
    timeout: float | None,
    *,
    notified: bool,
) -> Job:
    """Read the job until it has ended; sleep on ``woken`` between reads. ``TimeoutError``
    after ``timeout`` seconds (``None``: no limit)."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    pause = NOTIFIED_POLL if notified else FIRST_POLL
    while True:
        job = await read()
        if job.state.finished:
            return job
        sleep = pause
        if deadline is not None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"job {job.id} is still {job.state.value} after {timeout:g}s")
            sleep = min(sleep, remaining)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), sleep)
        woken.clear()
        if not notified:
            pause = min(MAX_POLL, pause * 2)
