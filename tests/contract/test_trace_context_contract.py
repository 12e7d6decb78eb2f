"""The trace context of an enqueue is stored with the job, on every backend and every insert
path (one job, a batch, a job with a key, a transaction, a dependant), and comes back with the
claim that starts each attempt; a job enqueued untraced has none."""

from __future__ import annotations

import json

from quart_jobs.backends import Backend
from quart_jobs.backends.base import BackendTransaction
from quart_jobs.models import NewJob

from ..conftest import Clock

LEASE = 30.0


def context(n: int) -> str:
    return json.dumps({"traceparent": f"00-{n:032x}-{n:016x}-01", "tracestate": "k=v"})


async def test_each_insert_path_stores_the_context_and_a_claim_returns_it(
    backend: Backend, clock: Clock
) -> None:
    (one,) = await backend.enqueue([NewJob("t", trace_context=context(1))], clock())
    batch = await backend.enqueue(
        [NewJob("t", trace_context=context(2)), NewJob("t"), NewJob("t", trace_context=context(3))],
        clock(),
    )
    (keyed,) = await backend.enqueue([NewJob("t", key="k", trace_context=context(4))], clock())

    def in_tx(tx: BackendTransaction) -> int:
        return tx.enqueue([NewJob("t", trace_context=context(5))])[0].job.id

    in_transaction = await backend.run_transaction(in_tx, clock())
    (child,) = await backend.enqueue_after(
        [NewJob("t", trace_context=context(6))], [one.job.id], clock(), run_always=True
    )
    expected = {
        one.job.id: context(1),
        batch[0].job.id: context(2),
        batch[1].job.id: None,
        batch[2].job.id: context(3),
        keyed.job.id: context(4),
        in_transaction: context(5),
        child.job.id: context(6),
    }
    for result in (one, *batch, keyed, child):
        assert result.job.trace_context == expected[result.job.id]
    for job_id, stored in expected.items():
        job = await backend.get(job_id)
        assert job is not None and job.trace_context == stored
    claimed = await backend.claim("w", 100, clock(), LEASE)
    assert {job.id: job.trace_context for job in claimed} == {
        job_id: stored for job_id, stored in expected.items() if job_id != child.job.id
    }
