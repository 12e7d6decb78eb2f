"""The fair claim, routing and concurrency keys: every backend, and the same order as policy's
pure simulation (``FairBook``) for the same arrivals."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

from quart_jobs.backends import Backend, Outcome
from quart_jobs.backends.base import ANY_SCOPE, ClaimScope
from quart_jobs.backends.memory.backend import MemoryBackend
from quart_jobs.backends.sqlite.backend import SQLiteBackend
from quart_jobs.fairness import FairBook, Weights
from quart_jobs.models import JobState, Lease, NewJob, Tier

from ..conftest import TEST_POSTGRES_URL, Clock

LEASE = 30.0
VIP, REGULAR = int(Tier.VIP), int(Tier.REGULAR)


def new(owner: str | None = None, priority: int = REGULAR, **kw: object) -> NewJob:
    return NewJob(task=str(kw.pop("task", "t")), priority=priority, owner=owner, **kw)  # type: ignore[arg-type]


async def ids(backend: Backend, clock: Clock, *jobs: NewJob) -> list[int]:
    return [r.job.id for r in await backend.enqueue(list(jobs), clock())]


async def claim(
    backend: Backend, clock: Clock, limit: int = 1, scope: ClaimScope = ANY_SCOPE
) -> list[int]:
    return [j.id for j in await backend.claim("w", limit, clock(), LEASE, scope)]


async def test_a_vip_job_starts_at_the_next_slot_ahead_of_a_regular_backlog(
    backend: Backend, clock: Clock
) -> None:
    backlog = await ids(backend, clock, *(new("bob") for _ in range(20)))
    assert await claim(backend, clock) == backlog[:1]
    (vip,) = await ids(backend, clock, new("alice", VIP))
    assert await claim(backend, clock) == [vip]


async def test_a_new_owner_is_not_stuck_behind_another_owners_backlog(
    backend: Backend, clock: Clock
) -> None:
    bob = await ids(backend, clock, *(new("bob") for _ in range(50)))
    assert await claim(backend, clock, 3) == bob[:3]
    (carol,) = await ids(backend, clock, new("carol"))
    # carol's job joins the current round: at most one more of bob's goes before it.
    assert carol in await claim(backend, clock, 2)


async def test_owners_take_turns_and_each_owners_jobs_keep_their_order(
    backend: Backend, clock: Clock
) -> None:
    bob = await ids(backend, clock, *(new("bob") for _ in range(3)))
    carol = await ids(backend, clock, *(new("carol") for _ in range(3)))
    anonymous = await ids(backend, clock, new(None), new(None))
    order = await claim(backend, clock, 10)
    assert order == [
        bob[0],
        carol[0],
        anonymous[0],
        bob[1],
        carol[1],
        anonymous[1],
        bob[2],
        carol[2],
    ]


async def test_under_a_vip_flood_regular_jobs_get_one_start_in_ten(
    backend: Backend, clock: Clock
) -> None:
    vip = set(await ids(backend, clock, *(new(f"v{i % 5}", VIP) for i in range(60))))
    await ids(backend, clock, *(new("bob") for _ in range(20)))
    order = [await claim(backend, clock) for _ in range(50)]
    regular_starts = sum(1 for (job_id,) in order if job_id not in vip)
    assert regular_starts == 5  # weight 9 to 1: one regular start in every ten


async def test_a_delayed_job_gets_its_turn_when_it_becomes_ready(
    backend: Backend, clock: Clock
) -> None:
    bob = await ids(backend, clock, *(new("bob") for _ in range(10)))
    (carol,) = await ids(backend, clock, new("carol", run_at=clock() + 10))
    assert await claim(backend, clock, 2) == bob[:2]
    clock.advance(10)
    # Ready now: carol's job is tagged in the current round, not behind bob's queue.
    assert carol in await claim(backend, clock, 2)


async def test_a_retried_job_queues_again_behind_its_owners_waiting_jobs(
    backend: Backend, clock: Clock
) -> None:
    first, second = await ids(backend, clock, new("bob"), new("bob"))
    (job,) = await backend.claim("w", 1, clock(), LEASE)
    lease = Lease(job.id, job.lease_token or "")
    failure = Outcome(lease, JobState.FAILED, error="E", run_at=clock() + 1)
    assert await backend.finish([failure], clock()) == [True]
    clock.advance(1)
    assert await claim(backend, clock, 2) == [second, first]


async def test_a_claim_takes_only_the_tasks_and_queues_it_is_given(
    backend: Backend, clock: Clock
) -> None:
    mine, other, slow = await ids(
        backend, clock, new(task="mine"), new(task="other"), new(task="mine", queue="slow")
    )
    scope = ClaimScope(tasks=("mine",), queues=("default",))
    assert await claim(backend, clock, 10, scope) == [mine]
    assert await claim(backend, clock, 10, scope) == []
    unknown = await backend.get(other)
    assert unknown is not None and (unknown.state, unknown.attempts) == (JobState.QUEUED, 0)
    assert await claim(backend, clock, 10, ClaimScope(tasks=("mine",), queues=("slow",))) == [slow]
    stats = await backend.stats()
    assert stats.queues[("default", JobState.QUEUED)] == 1
    assert stats.queues[("slow", JobState.RUNNING)] == 1


async def test_a_concurrency_key_limits_running_jobs_and_a_lapsed_lease_frees_its_slot(
    backend: Backend, clock: Clock
) -> None:
    keyed = dict(concurrency_key="customer:42", concurrency_limit=2)
    a, b, c = await ids(backend, clock, *(new("bob", **keyed) for _ in range(3)))
    (free,) = await ids(backend, clock, new("carol"))
    assert sorted(await claim(backend, clock, 10)) == [a, b, free]
    assert await claim(backend, clock, 10) == []
    waiting = await backend.get(c)
    assert waiting is not None and (waiting.state, waiting.attempts) == (JobState.QUEUED, 0)
    clock.advance(LEASE + 1)
    await backend.recover_expired(clock())
    # The lapsed leases freed both slots: a and b (back in their place) run again before c.
    assert sorted(await claim(backend, clock, 10)) == [a, b, free]


@contextlib.asynccontextmanager
async def second_process(backend: Backend) -> AsyncIterator[Backend]:
    """Another process's backend on the same store (memory has one process: the same one)."""
    if isinstance(backend, SQLiteBackend):
        other: Backend = SQLiteBackend(backend.path, synchronous="NORMAL")
    elif isinstance(backend, MemoryBackend):
        yield backend
        return
    else:
        from quart_jobs.backends.postgres.backend import PostgresBackend

        assert isinstance(backend, PostgresBackend)
        other = PostgresBackend(TEST_POSTGRES_URL, schema=backend.schema, min_size=1, max_size=2)
    await other.open()
    try:
        yield other
    finally:
        await other.close()


async def test_starts_are_stamped_in_the_order_their_claims_committed(
    backend: Backend, clock: Clock
) -> None:
    """A claim that read its clock first but committed second (it waited for the lock while
    another process claimed) is stamped after the one that committed first."""
    await ids(backend, clock, *(new("bob") for _ in range(4)))
    late_reader = clock() - 0.5  # the other process read its clock half a second earlier
    async with second_process(backend) as other:
        (first,) = await backend.claim("w1", 1, clock(), LEASE)
        (second,) = await other.claim("w2", 1, late_reader, LEASE)
        (third,) = await backend.claim("w1", 1, clock(), LEASE)
    assert first.started_at is not None and second.started_at is not None
    assert first.started_at < second.started_at < (third.started_at or 0.0)
    assert first.id < second.id < third.id  # and the claims took bob's jobs in order


# --- the same order as the pure simulation ---------------------------------------------------


@dataclass(frozen=True)
class _Job:
    id: int
    queue: str
    priority: int
    tag: float
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    rate_key: str | None = None


class _Model:
    """policy's rule applied to plain lists: what every backend must reproduce."""

    def __init__(self) -> None:
        self.book = FairBook()
        self.queued: list[_Job] = []

    def enqueue(self, job_id: int, priority: int, owner: str) -> None:
        self.queued.append(
            _Job(job_id, "default", priority, self.book.tag("default", priority, owner))
        )

    def claim(self, weights: Weights, now: float) -> list[int]:
        heads: dict[tuple[str, int], list[_Job]] = {}
        for job in sorted(self.queued, key=lambda j: (j.tag, j.id)):
            heads.setdefault((job.queue, job.priority), []).append(job)
        chosen = self.book.start(heads, 1, weights, now)
        for job in chosen:
            self.queued.remove(job)
        return [job.id for job in chosen]


async def test_every_backend_orders_a_mixed_sequence_as_the_policy_does(
    backend: Backend, clock: Clock
) -> None:
    rng = random.Random(14)
    weights = Weights({VIP: 3, REGULAR: 1, 20: 1})
    model = _Model()
    got: list[int] = []
    expected: list[int] = []
    for _ in range(300):
        if rng.random() < 0.55:
            priority = rng.choice([VIP, REGULAR, REGULAR, 20])
            owner = rng.choice(["alice", "bob", "bob", "bob", "carol", "dave"])
            (job_id,) = await ids(backend, clock, new(owner, priority))
            model.enqueue(job_id, priority, owner)
        else:
            clock.advance(0.01)
            got += await claim(backend, clock, 1, ClaimScope(weights=weights))
            expected += model.claim(weights, clock())
    assert got == expected and len(got) > 100


async def test_ready_tasks_count_ready_jobs_by_queue_and_task(
    backend: Backend, clock: Clock
) -> None:
    await ids(backend, clock, new(task="a"), new(task="a"), new(task="b", queue="reports"))
    await ids(backend, clock, new(task="c", run_at=clock() + 60))  # not ready: not counted
    assert await backend.ready_tasks() == {("default", "a"): 2, ("reports", "b"): 1}


async def test_purge_forgets_idle_owners_without_changing_the_order(
    backend: Backend, clock: Clock
) -> None:
    (first,) = await ids(backend, clock, new("bob"))
    (job,) = await backend.claim("w", 1, clock(), LEASE)
    done = Outcome(Lease(job.id, job.lease_token or ""), JobState.SUCCEEDED)
    assert await backend.finish([done], clock()) == [True]
    await backend.purge(clock() + 1)
    assert await backend.get(first) is None
    bob = await ids(backend, clock, new("bob"), new("bob"))
    (carol,) = await ids(backend, clock, new("carol"))
    # bob started in the current round already: carol first, then bob in his order.
    assert await claim(backend, clock, 3) == [carol, *bob]


async def test_jobs_enqueued_in_an_application_transaction_take_their_turn(
    backend: Backend, clock: Clock
) -> None:
    bob = await ids(backend, clock, *(new("bob") for _ in range(3)))
    (carol,) = await backend.run_transaction(
        lambda tx: [r.job.id for r in tx.enqueue([new("carol")])], clock()
    )
    assert await claim(backend, clock, 4) == [bob[0], carol, bob[1], bob[2]]
