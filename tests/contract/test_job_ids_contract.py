"""Ids that no job can have (0, negative, past a signed 64-bit integer) on every backend: the
job is not found, and the store is never asked (SQLite cannot bind such an integer)."""

from __future__ import annotations

import pytest

from quart_jobs import JobNotFound, Jobs, Transaction
from quart_jobs.backends import Backend
from quart_jobs.models import MAX_JOB_ID

from ..conftest import Clock

OUT_OF_RANGE = [2**63, 2**64 + 5, 0, -1, -(2**63) - 1]


async def noop() -> None:
    return None


@pytest.mark.parametrize("job_id", OUT_OF_RANGE)
async def test_an_id_out_of_range_is_not_found(backend: Backend, clock: Clock, job_id: int) -> None:
    jobs = Jobs(backend, clock=clock)
    jobs.register(noop, name="noop")
    for call in (jobs.get, jobs.cancel, jobs.retry):
        with pytest.raises(JobNotFound, match=f"no job has id {job_id}"):
            await call(job_id)
    with pytest.raises(JobNotFound):
        await jobs.wait(job_id, timeout=5)
    assert await jobs.find(job_id) is None

    def inside(tx: Transaction) -> tuple[object, object]:
        return tx.get_job(job_id), tx.cancel_job(job_id)

    assert await jobs.transaction(inside) == (None, None)


async def test_the_largest_id_is_asked_of_the_store(backend: Backend, clock: Clock) -> None:
    jobs = Jobs(backend, clock=clock)
    assert await jobs.find(MAX_JOB_ID) is None
    with pytest.raises(JobNotFound, match=f"no job has id {MAX_JOB_ID}"):
        await jobs.cancel(MAX_JOB_ID)
