"""PostgreSQL beyond the contract: several backend instances (as several processes would have)
sharing one database, LISTEN/NOTIFY, migrations, and failures a user meets."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import psycopg
import pytest

from quart_jobs.backends import Outcome
from quart_jobs.backends.base import ClaimScope
from quart_jobs.backends.postgres import schema
from quart_jobs.backends.postgres.backend import PostgresBackend
from quart_jobs.backends.postgres.transaction import PROCESSING_CONNECTIONS
from quart_jobs.backends.running import running_job
from quart_jobs.backends.shared_sql import versions
from quart_jobs.errors import BackendUnavailable, SchemaTooNew
from quart_jobs.models import JobFilter, JobState, Lease, NewJob

from ..conftest import TEST_POSTGRES_URL, Clock

pytestmark = pytest.mark.postgres

LEASE = 30.0

Factory = Callable[..., PostgresBackend]


@pytest.fixture
async def instances(postgres_schema: str) -> AsyncIterator[Factory]:
    """Makes backends on one fresh schema; closes them all at the end."""
    async with AsyncExitStack() as stack:

        def make(**options: Any) -> PostgresBackend:
            options.setdefault("min_size", 1)
            options.setdefault("max_size", 4)
            store = PostgresBackend(TEST_POSTGRES_URL, schema=postgres_schema, **options)
            stack.push_async_callback(store.close)
            return store

        yield make


async def opened(make: Factory, **options: Any) -> PostgresBackend:
    store = make(**options)
    await store.open()
    return store


async def wait_for_event(event: asyncio.Event, timeout: float) -> float:
    start = time.monotonic()
    await asyncio.wait_for(event.wait(), timeout)
    return time.monotonic() - start


async def test_an_enqueue_in_another_process_wakes_a_subscriber(
    instances: Factory, clock: Clock
) -> None:
    listening, producer = await opened(instances), await opened(instances)
    woken = asyncio.Event()
    listening.subscribe(woken.set)
    await wait_for_event(woken, 5.0)  # called once when LISTEN is in place
    woken.clear()

    await producer.enqueue([NewJob("t")], clock())
    assert await wait_for_event(woken, 1.0) < 1.0

    listening.unsubscribe(woken.set)


async def test_a_subscriber_is_not_woken_by_another_schema(
    instances: Factory, postgres_schema: str, clock: Clock
) -> None:
    listening = await opened(instances)
    woken = asyncio.Event()
    listening.subscribe(woken.set)
    await wait_for_event(woken, 5.0)
    woken.clear()
    async with await psycopg.AsyncConnection.connect(TEST_POSTGRES_URL, autocommit=True) as conn:
        await conn.execute("SELECT pg_notify('quart_jobs', %s)", (postgres_schema + "_other",))
        await conn.execute("SELECT pg_notify('quart_jobs', %s)", (postgres_schema,))
    await wait_for_event(woken, 1.0)
    woken.clear()
    # Another schema's notification, then ours, from one session: the listener reads them in
    # that order, so once ours is read the other one was read (and must not have woken us).
    read: list[str] = []
    listener = listening._listener  # the LISTEN connection's reader
    receive = listener._received

    def received(payload: str) -> None:
        receive(payload)
        read.append(payload)

    listener._received = received  # type: ignore[method-assign]
    wakes = []
    listening.subscribe(lambda: wakes.append(1))
    async with await psycopg.AsyncConnection.connect(TEST_POSTGRES_URL, autocommit=True) as conn:
        await conn.execute("SELECT pg_notify('quart_jobs', %s)", (postgres_schema + "_other",))
        await conn.execute("SELECT pg_notify('quart_jobs', %s)", (postgres_schema,))
    async with asyncio.timeout(5):
        while postgres_schema not in read:
            await asyncio.sleep(0.005)
    assert read == [postgres_schema + "_other", postgres_schema]
    assert wakes == [1]  # ours only


async def test_the_listener_reconnects_after_losing_its_connection(
    instances: Factory, clock: Clock
) -> None:
    listening, producer = await opened(instances), await opened(instances)
    woken = asyncio.Event()
    listening.subscribe(woken.set)
    await wait_for_event(woken, 5.0)
    pid = listening.listener_pid
    assert pid is not None
    woken.clear()

    async with await psycopg.AsyncConnection.connect(TEST_POSTGRES_URL, autocommit=True) as conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    await wait_for_event(woken, 5.0)  # reconnected: subscribers are told to look
    assert listening.listener_pid not in (None, pid)
    woken.clear()
    await producer.enqueue([NewJob("t")], clock())
    await wait_for_event(woken, 1.0)


async def test_two_processes_claiming_at_once_never_get_the_same_job(
    instances: Factory, clock: Clock
) -> None:
    first, second = await opened(instances), await opened(instances)
    created = await first.enqueue([NewJob("t", priority=i % 3) for i in range(300)], clock())

    async def drain(store: PostgresBackend, worker: str) -> list[int]:
        got: list[int] = []
        while batch := await store.claim(worker, 3, clock(), LEASE):
            got += [job.id for job in batch]
        return got

    runs = await asyncio.gather(
        *(
            drain(store, f"{name}-{i}")
            for i in range(4)
            for name, store in [("a", first), ("b", second)]
        )
    )
    claimed = [job_id for run in runs for job_id in run]
    assert sorted(claimed) == sorted(r.job.id for r in created)


async def test_one_key_enqueued_from_two_processes_creates_one_job(
    instances: Factory, clock: Clock
) -> None:
    # Without group commit every call is its own transaction: the conflicting ones wait for
    # the first COMMIT and then return the job it created.
    stores = [await opened(instances, group_commit=False) for _ in range(2)]
    results = await asyncio.gather(
        *(stores[i % 2].enqueue([NewJob("t", key="same")], clock()) for i in range(20))
    )
    assert len({r[0].job.id for r in results}) == 1
    assert sum(r[0].created for r in results) == 1


async def test_batches_with_the_same_keys_in_opposite_orders_all_succeed(
    instances: Factory, clock: Clock
) -> None:
    stores = [await opened(instances, group_commit=False) for _ in range(2)]
    keys = [f"k{i}" for i in range(20)]
    forward = [NewJob("t", key=k) for k in keys]
    backward = list(reversed(forward))
    results = await asyncio.gather(
        *(stores[i % 2].enqueue(forward if i % 2 else backward, clock()) for i in range(6))
    )
    ids = {r.job.key: r.job.id for batch in results for r in batch}
    assert len(ids) == 20
    assert sum(r.created for batch in results for r in batch) == 20


async def test_a_bad_enqueue_fails_alone_in_its_group_commit(
    instances: Factory, clock: Clock
) -> None:
    store = await opened(instances)
    calls = [store.enqueue([NewJob(f"t{i}")], clock()) for i in range(5)]
    calls.insert(2, store.enqueue([NewJob("nul\x00in task name")], clock()))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[2], BackendUnavailable)
    good = [r for i, r in enumerate(results) if i != 2]
    assert all(isinstance(r, list) and r[0].created for r in good)
    stats = await store.stats()
    assert stats.count() == 5


async def test_migrations_from_three_processes_starting_together(instances: Factory) -> None:
    stores = [instances() for _ in range(3)]
    await asyncio.gather(*(store.open() for store in stores))
    async with stores[0].transaction() as conn:
        cur = await conn.execute("SELECT component, version FROM qj_schema ORDER BY component")
        assert await cur.fetchall() == [
            (versions.JOBS, len(schema.MIGRATIONS)),
            (versions.OPERATOR, len(schema.OPERATOR_MIGRATIONS)),
            (versions.WORKERS, len(schema.WORKERS_MIGRATIONS)),
        ]


async def test_a_database_from_newer_code_is_refused(instances: Factory) -> None:
    store = await opened(instances)
    async with store.transaction() as conn:
        await conn.execute("UPDATE qj_schema SET version = version + 1")
    await store.close()
    with pytest.raises(SchemaTooNew, match="upgrade"):
        await instances().open()


async def test_an_unreachable_server_fails_open_quickly_without_the_password() -> None:
    store = PostgresBackend(
        "postgresql://root:s3cret@127.0.0.1:1/test", schema="x", connect_timeout=2
    )
    start = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        await store.open()
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "127.0.0.1:1" in message and "s3cret" not in message
    await store.close()


async def test_no_free_connection_in_time_is_backend_unavailable(
    instances: Factory, clock: Clock
) -> None:
    store = await opened(instances, min_size=1, max_size=1, pool_timeout=0.2)
    async with store.transaction():
        with pytest.raises(BackendUnavailable, match="no connection free"):
            await store.get(1)
    assert await store.get(1) is None


async def test_operations_before_open_are_backend_unavailable(instances: Factory) -> None:
    with pytest.raises(BackendUnavailable, match="open"):
        await instances().get(1)


async def test_the_application_transaction_commits_or_rolls_back(instances: Factory) -> None:
    store = await opened(instances)
    async with store.transaction() as conn:
        await conn.execute("CREATE TABLE app_things (name text PRIMARY KEY)")
        await conn.execute("INSERT INTO app_things VALUES ('kept')")

    async def insert_both() -> None:
        async with store.transaction() as conn:
            await conn.execute("INSERT INTO app_things VALUES ('dropped')")
            await conn.execute("INSERT INTO app_things VALUES ('kept')")

    with pytest.raises(psycopg.errors.UniqueViolation):
        await insert_both()
    async with store.transaction() as conn:
        cur = await conn.execute("SELECT name FROM app_things")
        assert await cur.fetchall() == [("kept",)]


async def test_purge_and_finished_counts(instances: Factory, clock: Clock) -> None:
    from quart_jobs.backends import Outcome
    from quart_jobs.models import JobState, Lease

    store = await opened(instances)
    start = clock()
    await store.enqueue([NewJob("t") for _ in range(3)], clock())
    jobs = await store.claim("w", 3, clock(), LEASE)
    ends = [JobState.SUCCEEDED, JobState.FAILED, JobState.SUCCEEDED]
    for job, state in zip(jobs, ends, strict=True):
        clock.advance(10)
        lease = Lease(job.id, job.lease_token or "")
        assert await store.finish([Outcome(lease, state)], clock()) == [True]
    assert await store.operator.finished_counts(start, 15) == {
        (0, JobState.SUCCEEDED): 1,
        (1, JobState.FAILED): 1,
        (2, JobState.SUCCEEDED): 1,
    }
    removed = await store.purge(start + 25, [JobState.SUCCEEDED])
    assert removed == {JobState.SUCCEEDED: 1}
    assert (await store.stats()).count() == 2
    with pytest.raises(ValueError, match="queued"):
        await store.purge(clock(), [JobState.QUEUED])


async def test_queue_limits_hold_across_processes(instances: Factory, clock: Clock) -> None:
    from quart_jobs.backends.base import QueueLimits
    from quart_jobs.errors import QueueFull

    stores = [await opened(instances), await opened(instances), await opened(instances)]
    limits = QueueLimits(max_queued=12, max_queued_per_owner=5)
    (first,) = await stores[0].enqueue([NewJob("t", owner="bob", key="k")], clock(), limits=limits)
    calls = [
        stores[i % 3].enqueue([NewJob("t", owner=owner)], clock(), limits=limits)
        for i in range(30)
        for owner in ("alice", "bob", None)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, list | QueueFull) for r in results)
    stats = await stores[0].stats()
    assert stats.count() == 12
    queued = await stores[0].list_jobs(JobFilter(limit=100))
    by_owner = {o: sum(j.owner == o for j in queued) for o in ("alice", "bob", None)}
    assert by_owner["alice"] <= 5 and by_owner["bob"] <= 5
    (replay,) = await stores[1].enqueue([NewJob("t", owner="bob", key="k")], clock(), limits=limits)
    assert not replay.created and replay.job.id == first.job.id
    with pytest.raises(QueueFull) as info:
        await stores[2].enqueue([NewJob("t"), NewJob("t", key="new")], clock(), limits=limits)
    assert info.value.scope == "global"
    assert await stores[0].get_by_key("new") is None


async def test_a_per_owner_cap_is_exact_under_concurrency(instances: Factory, clock: Clock) -> None:
    from quart_jobs.backends.base import QueueLimits

    stores = [await opened(instances), await opened(instances, group_commit=False)]
    limits = QueueLimits(max_queued_per_owner=3)
    calls = [
        stores[i % 2].enqueue([NewJob("t", owner=owner)], clock(), limits=limits)
        for i in range(20)
        for owner in ("alice", "bob")
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(isinstance(r, list) for r in results) == 6
    queued = await stores[0].list_jobs(JobFilter(limit=100))
    assert sorted(j.owner or "" for j in queued) == ["alice"] * 3 + ["bob"] * 3


async def test_the_listener_keeps_retrying_while_the_server_is_unreachable(
    postgres_schema: str,
) -> None:
    from quart_jobs.backends.postgres.wakeup import Listener

    attempts = 0

    async def flaky_connect() -> psycopg.AsyncConnection[Any]:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise BackendUnavailable("server down (simulated)")
        return await psycopg.AsyncConnection.connect(TEST_POSTGRES_URL, autocommit=True)

    listener = Listener(flaky_connect, "quart_jobs", postgres_schema, max_backoff=0.05)
    woken = asyncio.Event()
    listener.add(woken.set)
    try:
        await wait_for_event(woken, 5.0)
        assert attempts == 3 and listener.pid is not None
    finally:
        await listener.stop()


async def _round_trips(store: PostgresBackend, act: Callable[[], Any]) -> int:
    """How many times ``act`` made the client send and then wait for the server (libpq's
    protocol trace of the pool's one connection: each run of client messages is one trip)."""
    pool = store._db.pool
    assert pool is not None
    conn = await pool.getconn()
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        await pool.putconn(conn)
        await act()
        conn = await pool.getconn()
        conn.pgconn.untrace()
        await pool.putconn(conn)
        trace.seek(0)
        senders = [line.split("\t")[1] for line in trace if line.count("\t") >= 3]
    return sum(
        1 for i, who in enumerate(senders) if who == "F" and (i == 0 or senders[i - 1] != "F")
    )


async def test_an_awaited_enqueue_is_one_round_trip_and_a_worker_round_two(
    instances: Factory, clock: Clock
) -> None:
    store = await opened(instances, min_size=1, max_size=1)
    for _ in range(6):  # past psycopg's prepare threshold: the statements are prepared
        await store.enqueue([NewJob(task="t", priority=10)], clock())
        (job,) = await store.claim("w", 1, clock(), LEASE)
        await store.finish(
            [Outcome(Lease(job.id, job.lease_token or ""), JobState.SUCCEEDED)], clock()
        )

    async def enqueue_three() -> None:
        for owner in ("a", "b", None):
            await store.enqueue([NewJob(task="t", priority=10, owner=owner)], clock())

    # The wake-ups go out afterwards, off the enqueue's round trip (their own test is below).
    woken: list[list[tuple[str, str]]] = []
    await store._db.waker.idle()  # the wake-ups of the enqueues above are out
    store._db.waker.send = woken.append  # type: ignore[method-assign]
    try:
        assert await _round_trips(store, enqueue_three) == 3
        assert woken == [[("quart_jobs", store.schema)]] * 3
        scope = ClaimScope(("t",), None)  # a worker's: its tasks
        running = await store.claim("w", 2, clock(), LEASE, scope)
        outcomes = [Outcome(Lease(j.id, j.lease_token or ""), JobState.SUCCEEDED) for j in running]

        async def worker_round() -> None:
            held, claimed = await store.finish_and_claim(outcomes, "w", 2, clock(), LEASE, scope)
            assert held == [True, True] and len(claimed) == 1

        woken.clear()
        assert await _round_trips(store, worker_round) == 2
        ended = ",".join(str(j.id) for j in running)
        assert woken == [[("quart_jobs_finished", f"{store.schema}:{ended}")]]  # announced after
    finally:
        del store._db.waker.send


async def test_wake_ups_asked_for_together_go_out_in_one_statement_after_the_caller_returned(
    instances: Factory,
) -> None:
    # An enqueue's NOTIFY is not in its transaction (it would hold PostgreSQL's notify lock,
    # one for the whole cluster, through the commit's WAL flush): the waker sends it after.
    store = await opened(instances, min_size=1, max_size=1)
    listener = await psycopg.AsyncConnection.connect(TEST_POSTGRES_URL, autocommit=True)
    try:
        await listener.execute("LISTEN quart_jobs")
        waker = store._db.waker

        async def three_wakes() -> None:
            for _ in range(3):
                waker.send([("quart_jobs", store.schema)])
            await waker.idle()

        assert await _round_trips(store, three_wakes) == 1
        got = [n async for n in listener.notifies(timeout=5.0, stop_after=1)]
        assert [(n.channel, n.payload) for n in got] == [("quart_jobs", store.schema)]
    finally:
        await listener.close()


async def test_jobs_without_an_owner_from_several_connections_stay_fifo_and_one_owner(
    instances: Factory, clock: Clock
) -> None:
    # Each connection tags ownerless jobs through a stripe of its own (no common row lock
    # between processes); an enqueue after another's commit is still tagged after it, and
    # ownerless jobs still take one start per round beside an owner's.
    stores = [await opened(instances, min_size=1, max_size=1) for _ in range(3)]
    pids = []
    for store in stores:
        async with store.transaction() as conn:
            cur = await conn.execute("SELECT pg_backend_pid() % 64")
            row = await cur.fetchone()
            assert row is not None
            pids.append(int(row[0]))
    ownerless = []
    for i in range(6):
        store = stores[i % 3]
        (done,) = await store.enqueue([NewJob(task="t")], clock())
        ownerless.append(done.job.id)
    owned = [r.job.id for r in await stores[0].enqueue([NewJob(task="t", owner="x")] * 3, clock())]
    async with stores[0].transaction() as conn:
        cur = await conn.execute("SELECT count(*) FROM qj_fair_ownerless")
        row = await cur.fetchone()
    assert row is not None and row[0] == len(set(pids))  # one stripe per connection
    started = [j.id for j in await stores[1].claim("w", 9, clock(), LEASE)]
    assert [i for i in started if i in ownerless] == ownerless  # FIFO across the stripes
    # One owner among owners: the ownerless and x alternate while both have jobs.
    assert started[:6] == [ownerless[0], owned[0], ownerless[1], owned[1], ownerless[2], owned[2]]


async def test_a_session_left_idle_in_a_transaction_is_ended_by_the_server(
    instances: Factory,
) -> None:
    # A worker cut off between two round trips of its claim would hold the tier clocks' row
    # locks: the server ends such a session (after 30 s), so the other workers go on.
    store = await opened(instances)
    async with store.transaction() as conn:
        cur = await conn.execute("SHOW idle_in_transaction_session_timeout")
        row = await cur.fetchone()
        cur = await conn.execute("SHOW search_path")
        path = await cur.fetchone()
    assert row is not None and row[0] == "30s"
    assert path is not None and path[0] == store.schema


async def test_a_flood_of_application_transactions_leaves_connections_for_processing(
    instances: Factory, clock: Clock
) -> None:
    """Transactions of the application outside a job (intake) take at most max_size -
    PROCESSING_CONNECTIONS connections: while they are all busy, another waits its turn, and a
    running job's own transaction and a worker's round still get a connection."""
    store, started, release, intake, first = await _one_intake_slot_held(instances, clock)
    second = asyncio.ensure_future(store.run_transaction(intake("second"), clock()))

    async def in_a_job() -> str:
        running_job.set(True)
        return await store.run_transaction(intake("job"), clock())

    assert await asyncio.wait_for(asyncio.create_task(in_a_job()), 5) == "job"
    await asyncio.wait_for(store.claim_round([], "w", 1, clock(), LEASE), 5)
    assert started == ["first", "job"] and not second.done()  # the second waits its turn
    release.set()
    assert await asyncio.wait_for(asyncio.gather(first, second), 5) == ["first", "second"]


async def _one_intake_slot_held(
    instances: Factory, clock: Clock
) -> tuple[
    PostgresBackend,
    list[str],
    threading.Event,
    Callable[[str], Callable[[Any], str]],
    asyncio.Future[str],
]:
    """A store with one intake connection, held by a transaction "first" until ``release``."""
    store = await opened(instances, min_size=1, max_size=1 + PROCESSING_CONNECTIONS)
    release = threading.Event()
    started: list[str] = []
    intake = _intake(started, release)
    first = asyncio.ensure_future(store.run_transaction(intake("first"), clock()))
    await wait_until_true(lambda: started == ["first"])
    return store, started, release, intake, first


def _intake(started: list[str], release: threading.Event) -> Callable[[str], Callable[[Any], str]]:
    """Transaction functions that note their start; the one named "first" waits for
    ``release``."""

    def intake(name: str) -> Callable[[Any], str]:
        def run(tx: Any) -> str:
            started.append(name)
            if name == "first":
                release.wait(10)
            return name

        return run

    return intake


async def wait_until_true(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_the_application_transaction_does_not_wait_for_the_event_loop(
    instances: Factory, clock: Clock
) -> None:
    """Its statements go from its thread to the server: a busy (here: blocked) event loop
    does not hold a transaction, and the locks it took, between two of them."""
    store = await opened(instances)
    began = threading.Event()
    wrote = threading.Event()

    def write(tx: Any) -> int:
        began.set()
        tx.execute("CREATE TABLE app_loop (n integer)")
        tx.execute("INSERT INTO app_loop VALUES (1)")
        (job,) = tx.enqueue([NewJob(task="t")])
        wrote.set()
        return int(job.job.id)

    running = asyncio.ensure_future(store.run_transaction(write, clock()))
    await asyncio.to_thread(began.wait, 5)
    assert wrote.wait(5)  # the loop blocked meanwhile: the statements did not need it
    job_id = await running
    assert (await store.get(job_id)) is not None


async def test_a_cancelled_caller_keeps_its_intake_connection_until_its_thread_ends(
    instances: Factory, clock: Clock
) -> None:
    """A request cancelled (its client gone) while its transaction runs: the transaction
    still holds a connection, so it still counts against the intake's share."""
    store, started, release, intake, first = await _one_intake_slot_held(instances, clock)
    first.cancel()
    second = asyncio.ensure_future(store.run_transaction(intake("second"), clock()))
    await asyncio.sleep(0.2)
    assert started == ["first"] and not second.done()  # the cancelled one's thread still runs
    release.set()
    assert await asyncio.wait_for(second, 5) == "second"


async def test_a_probe_after_the_server_dropped_the_idle_connections_still_writes(
    instances: Factory, clock: Clock
) -> None:
    """A restart of the server breaks every idle pooled connection; a readiness probe must
    not answer "unavailable" for a connection the server is up to replace."""
    store = await opened(instances, min_size=1, max_size=1)
    async with store.transaction() as conn:
        pid = conn.info.backend_pid
    async with await psycopg.AsyncConnection.connect(TEST_POSTGRES_URL, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    await store.operator.probe_write(clock())  # raised BackendUnavailable before
