"""The live-workers registry: every backend keeps a row per running worker, refreshed by its
heartbeats, removed when it stops, gone once it expired (a worker killed without stopping)."""

from __future__ import annotations

from dataclasses import replace

from quart_jobs.backends import Backend
from quart_jobs.backends.shared_sql.workers import FORGET_AFTER
from quart_jobs.models import NewJob, WorkerRecord
from quart_jobs.unserved import unserved

from ..conftest import Clock


def record(name: str, now: float, ttl: float = 90.0, **kw: object) -> WorkerRecord:
    fields: dict[str, object] = {
        "host": "host-a",
        "pid": 4242,
        "tasks": ("mod.a", "mod.b"),
        "queues": None,
        "concurrency": 4,
    }
    fields.update(kw)
    return WorkerRecord(
        name=name,
        started_at=now,
        seen_at=now,
        expires_at=now + ttl,
        **fields,  # type: ignore[arg-type]
    )


async def test_a_registered_worker_is_live_with_what_it_serves(
    backend: Backend, clock: Clock
) -> None:
    now = clock()
    a = record("w-a", now)
    b = record("w-b", now, tasks=("mod.c",), queues=("slow", "reports"), pid=7)
    await backend.register_worker(b, now)
    await backend.register_worker(a, now)
    assert await backend.live_workers(now) == [a, b]  # by name, every field as written


async def test_a_refresh_moves_the_expiry_and_keeps_the_start(
    backend: Backend, clock: Clock
) -> None:
    start = clock()
    first = record("w-a", start, ttl=90.0)
    await backend.register_worker(first, start)
    clock.advance(60)
    later = record("w-a", clock(), ttl=90.0, tasks=("mod.a", "mod.b", "mod.new"))
    await backend.register_worker(later, clock())
    clock.advance(60)  # past the first expiry, within the refreshed one
    (live,) = await backend.live_workers(clock())
    assert live == replace(later, started_at=start)


async def test_a_worker_that_stopped_beating_counts_as_gone(backend: Backend, clock: Clock) -> None:
    now = clock()
    await backend.register_worker(record("w-killed", now, ttl=90.0), now)
    await backend.register_worker(record("w-alive", now, ttl=500.0), now)
    assert [w.name for w in await backend.live_workers(now + 90)] == ["w-alive", "w-killed"]
    assert [w.name for w in await backend.live_workers(now + 91)] == ["w-alive"]


async def test_a_removed_worker_is_gone_and_removing_twice_is_harmless(
    backend: Backend, clock: Clock
) -> None:
    now = clock()
    await backend.register_worker(record("w-a", now), now)
    await backend.register_worker(record("w-b", now), now)
    await backend.remove_worker("w-a")
    await backend.remove_worker("w-a")
    await backend.remove_worker("never-registered")
    assert [w.name for w in await backend.live_workers(now)] == ["w-b"]


async def test_rows_long_expired_are_forgotten_by_the_next_write(
    backend: Backend, clock: Clock
) -> None:
    now = clock()
    await backend.register_worker(record("w-old", now, ttl=10.0), now)
    later = now + 10 + FORGET_AFTER + 1
    await backend.register_worker(record("w-new", later), later)
    # The old row is deleted, not only expired: reading at the old time no longer finds it.
    assert [w.name for w in await backend.live_workers(now)] == ["w-new"]


async def test_ready_jobs_of_a_task_no_live_worker_has_are_unserved(
    backend: Backend, clock: Clock
) -> None:
    now = clock()
    await backend.enqueue(
        [NewJob("mod.a"), NewJob("mod.x"), NewJob("mod.x"), NewJob("mod.a", queue="slow")], now
    )
    await backend.register_worker(record("w-a", now, queues=("default",)), now)
    found = unserved(await backend.ready_tasks(), await backend.live_workers(now))
    assert [(u.queue, u.task, u.count, u.other_queues) for u in found] == [
        ("default", "mod.x", 2, False),
        ("slow", "mod.a", 1, True),
    ]


async def test_ready_kinds_and_counts_agree_with_ready_tasks(
    backend: Backend, clock: Clock
) -> None:
    now = clock()
    await backend.enqueue(
        [
            *(NewJob("mod.a", priority=10) for _ in range(3)),
            NewJob("mod.a", priority=0),
            NewJob("mod.b", queue="slow"),
            NewJob("mod.later", run_at=now + 60),  # not ready: not a kind
        ],
        now,
    )
    (running,) = await backend.claim("w", 1, now, 30.0)  # a VIP mod.a: running, not ready
    assert running.priority == 0
    kinds = await backend.ready_kinds()
    assert kinds == {("default", 10, "mod.a"), ("slow", 10, "mod.b")}
    counts = {k: await backend.ready_count(*k) for k in kinds}
    assert counts == {("default", 10, "mod.a"): 3, ("slow", 10, "mod.b"): 1}
    assert await backend.ready_tasks() == {("default", "mod.a"): 3, ("slow", "mod.b"): 1}
    assert await backend.ready_count("default", 0, "mod.a") == 0
    assert await backend.ready_kinds() == kinds  # reading changes nothing


async def test_the_skip_scan_finds_every_kind_across_queues_priorities_and_tasks(
    backend: Backend, clock: Clock
) -> None:
    now = clock()
    jobs = [
        NewJob(f"t{(i * 7) % 5}", queue=f"q{i % 3}", priority=(0, 5, 10)[(i // 3) % 3])
        for i in range(60)
    ]
    await backend.enqueue(jobs, now)
    expected: dict[tuple[str, int, str], int] = {}
    for j in jobs:
        expected[(j.queue, j.priority, j.task)] = expected.get((j.queue, j.priority, j.task), 0) + 1
    kinds = await backend.ready_kinds()
    assert kinds == set(expected)
    assert {k: await backend.ready_count(*k) for k in kinds} == expected
