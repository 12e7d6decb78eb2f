"""PostgreSQL notifications of finished jobs, for ``jobs.wait``.

Every transaction that ends jobs (a worker's outcomes, a cancel, a lease that expired for good)
sends ``NOTIFY quart_jobs_finished`` with the payload ``<schema>:<id>,<id>,…`` (split so that
no payload passes PostgreSQL's 8000-byte limit), or ``<schema>:*`` when the ids are not at
hand. The notifications are delivered on commit, to every process that LISTENs, on any
machine. A process LISTENs only while someone in it waits for a job.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Any

import psycopg

from .connections import Listener

log = logging.getLogger("quart_jobs.postgres")

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
    payloads = [f"{schema}:*"] if job_ids is None else finished_payloads(schema, job_ids)
    for payload in payloads:
        await conn.execute("SELECT pg_notify(%s, %s)", (FINISHED_CHANNEL, payload))


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
