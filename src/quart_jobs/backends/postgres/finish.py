"""How outcomes are recorded on PostgreSQL, in the caller's (pipelined) transaction: each write
presents its lease and changes nothing if the lease is no longer held; the jobs that end are
announced on ``quart_jobs_finished`` once the transaction committed (``wakes``: the caller
hands them to the :class:`~.connections.Waker`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from ...models import JobState, Lease, Progress
from ..base import Outcome
from ..shared_sql import jobs
from ..shared_sql.dialect import POSTGRESQL
from . import statements as q
from .connections import Wakes
from .wakeup import FINISHED_CHANNEL, finished_payloads

Connection = psycopg.AsyncConnection[TupleRow]


async def finish(
    conn: Connection,
    outcomes: Sequence[Outcome],
    now: float,
    offset: float,
    schema: str,
    wakes: Wakes,
) -> Callable[[], Awaitable[list[bool]]]:
    """Send the statements recording ``outcomes``; returns how to read, once the transaction
    ended, which leases were still held. Outcomes that end their jobs go in one statement
    (one per job otherwise); the announcements of the jobs that end are added to ``wakes``,
    for the caller to send once the transaction committed."""
    await write_progress(conn, jobs.outcome_progress(outcomes))
    ends = [i for i, o in enumerate(outcomes) if _plain_end(o)]
    if len({outcomes[i].lease.job_id for i in ends}) < len(ends) or len(ends) < 2:
        ends = []
    end_set = set(ends)
    one_by_one = [o for i, o in enumerate(outcomes) if i not in end_set]
    statements = [jobs.finish_statement(o, now, POSTGRESQL, offset) for o in one_by_one]
    ended = [o.lease.job_id for o in outcomes if o.ends_job]
    ends_cur = (
        await conn.execute(q.FINISH_ENDS, _ends_params([outcomes[i] for i in ends], now))
        if ends
        else None
    )
    cursors = [await conn.execute(query, params) for query, params in statements]
    wakes.extend((FINISHED_CHANNEL, payload) for payload in finished_payloads(schema, ended))

    async def held() -> list[bool]:
        still = set() if ends_cur is None else {int(r[0]) for r in await ends_cur.fetchall()}
        rest = iter(cursors)
        return [
            o.lease.job_id in still if i in end_set else next(rest).rowcount == 1
            for i, o in enumerate(outcomes)
        ]

    return held


def _plain_end(o: Outcome) -> bool:
    """Whether ``o`` is recorded by ``FINISH_END`` (see
    :func:`~..shared_sql.jobs.finish_statement`)."""
    if o.state is JobState.QUEUED:
        return False
    return not (o.state is JobState.FAILED and o.run_at is not None)


def _ends_params(outcomes: Sequence[Outcome], now: float) -> tuple[Any, ...]:
    """The parameters of :data:`~.statements.FINISH_ENDS`."""
    return (
        now,
        [o.lease.job_id for o in outcomes],
        [o.lease.token for o in outcomes],
        [o.state.value for o in outcomes],
        [o.result for o in outcomes],
        [o.error for o in outcomes],
        [o.traceback for o in outcomes],
        [o.why_text for o in outcomes],
    )


async def write_progress(conn: Connection, reports: Sequence[tuple[Lease, Progress]]) -> None:
    """Send the write of reported progress where the lease is still held (nothing to do: no
    statement)."""
    for start in range(0, len(reports), jobs.LEASE_CHUNK // 2):
        chunk = reports[start : start + jobs.LEASE_CHUNK // 2]
        await conn.execute(
            jobs.progress_statement(len(chunk), POSTGRESQL), jobs.progress_params(chunk)
        )
