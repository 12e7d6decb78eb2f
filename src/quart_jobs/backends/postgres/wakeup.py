"""PostgreSQL's wake-ups, by LISTEN/NOTIFY: "jobs are ready" for workers (enqueues NOTIFY
``quart_jobs`` in their transaction), and finished jobs for ``jobs.wait``.

A :class:`Listener` is one connection LISTENing on one channel while someone subscribes.

Every transaction that ends jobs (a worker's outcomes, a cancel, a lease that expired for good)
sends ``NOTIFY quart_jobs_finished`` with the payload ``<schema>:<id>,<id>,…`` (split so that
no payload passes PostgreSQL's 8000-byte limit), or ``<schema>:*`` when the ids are not at
hand. The notifications are delivered on commit, to every process that LISTENs, on any
machine. A process LISTENs only while someone in it waits for a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from ...errors import BackendUnavailable
from . import statements as q

log = logging.getLogger("quart_jobs.postgres")

#: The channel enqueues NOTIFY; the payload is the schema, so schemas do not wake each other.
CHANNEL = "quart_jobs"
FINISHED_CHANNEL = "quart_jobs_finished"
#: Payloads stay well below PostgreSQL's limit of 8000 bytes.
MAX_PAYLOAD = 7000

FinishedCallback = Callable[[Collection[int] | None], None]


def finished_payloads(schema: str, job_ids: Iterable[int]) -> list[str]:
    """The NOTIFY payloads announcing ``job_ids`` (one, unless there are very many)."""
    payloads: list[str] = []
    current: list[str] = []
    size = len(schema) + 1
    for job_id in job_ids:
        text = str(job_id)
        if current and size + len(text) + 1 > MAX_PAYLOAD:
            payloads.append(f"{schema}:{','.join(current)}")
            current, size = [], len(schema) + 1
        current.append(text)
        size += len(text) + 1
    if current:
        payloads.append(f"{schema}:{','.join(current)}")
    return payloads


async def notify_finished(
    conn: psycopg.AsyncConnection[Any], schema: str, job_ids: Iterable[int] | None
) -> None:
    """Announce ``job_ids`` (``None``: "some jobs ended"), delivered when ``conn`` commits."""
    for params in finished_notices(schema, job_ids):
        await conn.execute(q.NOTIFY, params)


def finished_notices(schema: str, job_ids: Iterable[int] | None) -> list[tuple[str, str]]:
    """The parameters of the NOTIFYs that announce ``job_ids`` (see :func:`notify_finished`)."""
    payloads = [f"{schema}:*"] if job_ids is None else finished_payloads(schema, job_ids)
    return [(FINISHED_CHANNEL, payload) for payload in payloads]


class Listener:
    """One autocommit connection that LISTENs on ``channel`` and calls the subscribers.

    Started on the first subscription, stopped when the last one leaves. A lost connection is
    reopened with backoff; after every (re)connect the subscribers are called once, because
    notifications sent while nobody listened are lost (the workers' polling covers the gap).
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
        channel: str,
        payload: str,
        *,
        max_backoff: float = 5.0,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._payload = payload
        self._max_backoff = max_backoff
        self._callbacks: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._pid: int | None = None

    @property
    def pid(self) -> int | None:
        """The server process of the LISTEN connection while it is open (for diagnostics)."""
        return self._pid

    @property
    def callbacks(self) -> Sequence[Callable[[], None]]:
        return tuple(self._callbacks)

    def add(self, callback: Callable[[], None]) -> None:
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"quart-jobs LISTEN {self._channel}"
            )

    def remove(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._callbacks.remove(callback)
        if not self._callbacks and self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        self._callbacks.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _wake(self) -> None:
        for callback in tuple(self._callbacks):
            try:
                callback()
            except Exception:
                log.exception("a job notification subscriber failed")

    def _received(self, payload: str) -> None:
        """A notification arrived on the channel (subclasses read other payloads)."""
        if payload == self._payload:
            self._wake()

    async def _run(self) -> None:
        failures = 0
        while self._callbacks:
            try:
                async with self._listening() as notifies:
                    failures = 0
                    self._wake()
                    async for notify in notifies:
                        self._received(notify.payload)
            except Exception as exc:  # the loop never ends by itself: it listens again
                failures += 1
                pause = min(self._max_backoff, 0.1 * 2**failures)
                if isinstance(exc, psycopg.Error | OSError | BackendUnavailable):
                    log.warning(
                        "LISTEN %s lost (reconnecting in %.1fs): %s", self._channel, pause, exc
                    )
                else:  # not the connection: a bug, shown with its traceback
                    log.exception(
                        "LISTEN %s failed (listening again in %.1fs)", self._channel, pause
                    )
                await asyncio.sleep(pause)

    @contextlib.asynccontextmanager
    async def _listening(self) -> AsyncIterator[AsyncIterator[psycopg.Notify]]:
        conn = await self._connect()
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._pid = conn.info.backend_pid
            yield conn.notifies()
        finally:
            self._pid = None
            await conn.close()


class FinishedListener(Listener):
    """LISTENs on :data:`FINISHED_CHANNEL` for one schema, while a callback is watching."""

    def __init__(
        self, connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]], schema: str
    ) -> None:
        super().__init__(connect, FINISHED_CHANNEL, schema)
        self._watchers: list[FinishedCallback] = []

    def watch(self, callback: FinishedCallback) -> None:
        if callback not in self._watchers:
            self._watchers.append(callback)
        self.add(self._everything_may_have_ended)

    def unwatch(self, callback: FinishedCallback) -> None:
        with contextlib.suppress(ValueError):
            self._watchers.remove(callback)
        if not self._watchers:
            self.remove(self._everything_may_have_ended)

    def _everything_may_have_ended(self) -> None:
        """Called on every (re)connect: what ended while nobody listened is unknown."""
        self._deliver(None)

    def _received(self, payload: str) -> None:
        schema, _, ids = payload.partition(":")
        if schema != self._payload:
            return
        if ids == "*":
            self._deliver(None)
            return
        try:
            self._deliver({int(i) for i in ids.split(",") if i})
        except ValueError:
            log.warning("ignored a malformed %s notification: %r", FINISHED_CHANNEL, payload)

    def _deliver(self, job_ids: Collection[int] | None) -> None:
        for callback in tuple(self._watchers):
            try:
                callback(job_ids)
            except Exception:
                log.exception("a finished-job watcher failed")
