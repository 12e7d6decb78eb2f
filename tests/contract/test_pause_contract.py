"""Paused queues, on every backend: a claim takes nothing from a paused queue and everything it
would otherwise from the others; enqueues are accepted; the pause outlives a restart and is
seen by another process's claims; ``next_run_at`` does not count what waits in a paused queue;
a resume makes the backlog claimable again, in its order."""

from __future__ import annotations

import pytest

from quart_jobs.backends import Backend
from quart_jobs.backends.base import ANY_SCOPE, ClaimScope
from quart_jobs.backends.memory.backend import MemoryBackend
from quart_jobs.backends.sqlite.backend import SQLiteBackend
from quart_jobs.models import JobState, NewJob

from ..conftest import TEST_POSTGRES_URL, Clock
from .test_fair_claim_contract import second_process

LEASE = 30.0


async def enqueue(backend: Backend, clock: Clock, queue: str, n: int, **kw: object) -> list[int]:
    jobs = [
        NewJob(task=str(kw.get("task", "t")), queue=queue, run_at=kw.get("run_at"))
        for _ in range(n)
    ]  # type: ignore[arg-type]
    return [r.job.id for r in await backend.enqueue(jobs, clock())]


async def claim(
    backend: Backend, clock: Clock, limit: int = 100, scope: ClaimScope = ANY_SCOPE
) -> list[int]:
    return [j.id for j in await backend.claim("w", limit, clock(), LEASE, scope)]


async def test_a_claim_takes_nothing_from_a_paused_queue_and_everything_else(
    backend: Backend, clock: Clock
) -> None:
    emails = await enqueue(backend, clock, "emails", 3)
    reports = await enqueue(backend, clock, "reports", 2)
    assert await backend.pause("emails", clock()) is True
    assert sorted(await claim(backend, clock)) == reports
    assert await claim(backend, clock) == []
    for job_id in emails:
        job = await backend.get(job_id)
        assert job is not None and (job.state, job.attempts) == (JobState.QUEUED, 0)
    # A scope that names only the paused queue finds nothing either.
    assert await claim(backend, clock, scope=ClaimScope(queues=("emails",))) == []


async def test_a_paused_queue_accepts_enqueues_and_delayed_jobs_stay_put_when_due(
    backend: Backend, clock: Clock
) -> None:
    await backend.pause("emails", clock())
    ready = await enqueue(backend, clock, "emails", 2)
    delayed = await enqueue(backend, clock, "emails", 1, run_at=clock() + 10)
    clock.advance(11)  # the delayed one comes due while paused: it waits with the others
    assert await claim(backend, clock) == []
    states = [(await backend.get(i)) for i in ready + delayed]
    assert [(j.state, j.attempts) for j in states if j] == [(JobState.QUEUED, 0)] * 3


async def test_resume_makes_the_backlog_claimable_in_its_order(
    backend: Backend, clock: Clock
) -> None:
    await backend.pause("emails", clock())
    backlog = await enqueue(backend, clock, "emails", 4)
    assert await claim(backend, clock) == []
    assert await backend.resume("emails") is True
    assert await claim(backend, clock, 2) == backlog[:2]
    assert await claim(backend, clock, 2) == backlog[2:]


async def test_pause_and_resume_say_whether_they_changed_anything(
    backend: Backend, clock: Clock
) -> None:
    first = clock()
    assert await backend.pause("never-used", first) is True  # no job has used it: allowed
    clock.advance(5)
    assert await backend.pause("never-used", clock()) is False
    assert await backend.pause("other", clock()) is True
    paused = await backend.paused()
    assert list(paused) == ["never-used", "other"]
    assert paused["never-used"] == pytest.approx(first)  # the first pause's time is kept
    assert await backend.resume("never-used") is True
    assert await backend.resume("never-used") is False
    assert await backend.resume("unknown") is False
    assert list(await backend.paused()) == ["other"]


async def test_running_jobs_of_a_paused_queue_finish_and_requeued_ones_wait(
    backend: Backend, clock: Clock
) -> None:
    from quart_jobs.backends import Outcome
    from quart_jobs.models import Lease

    a, b = await enqueue(backend, clock, "emails", 2)
    (running,) = await backend.claim("w", 1, clock(), LEASE)
    other = await backend.claim("w", 1, clock(), LEASE)
    await backend.pause("emails", clock())
    lease = Lease(running.id, running.lease_token or "")
    done = [Outcome(lease, JobState.SUCCEEDED, result="1")]
    assert await backend.finish(done, clock()) == [True]
    assert other and other[0].id == b
    # The other one's lease lapses while paused: it goes back to the queue and stays there.
    clock.advance(LEASE + 1)
    assert await backend.recover_expired(clock()) == 1
    assert await claim(backend, clock) == []
    await backend.resume("emails")
    assert await claim(backend, clock) == [b]
    finished = await backend.get(a)
    assert finished is not None and finished.state is JobState.SUCCEEDED


async def test_next_run_at_ignores_the_ready_jobs_of_paused_queues_and_of_other_scopes(
    backend: Backend, clock: Clock
) -> None:
    assert await backend.next_run_at() is None
    await enqueue(backend, clock, "emails", 2)
    assert await backend.next_run_at() == pytest.approx(clock())
    await backend.pause("emails", clock())
    assert await backend.next_run_at() is None  # only paused jobs wait: nothing is ready
    later = clock() + 30
    await enqueue(backend, clock, "emails", 1, run_at=later)
    assert await backend.next_run_at() == pytest.approx(later)  # not yet due: counted
    await enqueue(backend, clock, "reports", 1)
    assert await backend.next_run_at() == pytest.approx(clock())
    only_emails = ClaimScope(queues=("emails",))
    assert await backend.next_run_at(only_emails) == pytest.approx(later)
    await backend.resume("emails")
    assert await backend.next_run_at(only_emails) == pytest.approx(clock())


async def test_a_pause_outlives_a_restart_and_holds_for_another_process(
    backend: Backend, clock: Clock
) -> None:
    backlog = await enqueue(backend, clock, "emails", 3)
    async with second_process(backend) as other:
        await other.pause("emails", clock())
        assert await claim(backend, clock) == []  # this process's claims see it at once
    await backend.close()
    reopened = _reopened(backend)
    await reopened.open()
    try:
        assert list(await reopened.paused()) == ["emails"]
        assert await claim(reopened, clock) == []
        await reopened.resume("emails")
        assert sorted(await claim(reopened, clock)) == backlog
    finally:
        await reopened.close()
        await backend.open()  # the fixture closes it


def _reopened(backend: Backend) -> Backend:
    """A new backend on the same store (memory keeps its jobs across close/open: itself)."""
    if isinstance(backend, MemoryBackend):
        return backend
    if isinstance(backend, SQLiteBackend):
        return SQLiteBackend(backend.path, synchronous="NORMAL")
    from quart_jobs.backends.postgres.backend import PostgresBackend

    assert isinstance(backend, PostgresBackend)
    return PostgresBackend(TEST_POSTGRES_URL, schema=backend.schema, min_size=1, max_size=2)
