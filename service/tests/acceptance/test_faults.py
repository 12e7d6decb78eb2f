"""Fault injection with real processes: nothing accepted is lost, nothing is done twice.

``make test`` runs short versions; under ``CI=true`` (``.ci/run``) the full sizes run.
Each test prints its figures (rounds, accepted, lost, doubled, "locked" errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .order_checks import Verdict, sqlite_verdict, sqlite_witness
from .procs import (
    FULL,
    REGULAR_KEY,
    VIP_KEY,
    Service,
    auth,
    freeze_holding,
    full_only,
    running,
    service_env,
    wait_until,
)

pytestmark = pytest.mark.acceptance

ORDER = {"items": [{"sku": "F-1", "quantity": 1}], "processing_seconds": 0.02}
SHUTDOWN_TIMEOUT = 1


def db_verdict(db: Path, accepted: set[int]) -> Verdict:
    """The orders, their jobs and the witnessed writes, read straight from the database file."""
    return sqlite_verdict(db, accepted)


def all_done(db: Path, accepted: set[int]) -> bool:
    return db_verdict(db, accepted).lost == 0


async def stream_orders(
    url: str, accepted: set[int], stop: asyncio.Event, clients: int, fault: asyncio.Event
) -> list[str]:
    """Post orders from ``clients`` concurrent clients until ``stop``; collect the 202s. Return
    what went wrong that a client should never meet: any answer but 202, and a connection
    error before ``fault`` was set (the moment the test kills or stops the service)."""
    failures: list[str] = []

    async def client(n: int) -> None:
        key = VIP_KEY if n % 2 else REGULAR_KEY
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            while not stop.is_set():
                try:
                    r = await http.post("/orders", json=ORDER, headers=auth(key))
                except httpx.HTTPError as exc:
                    if not fault.is_set():
                        failures.append(f"before the fault: {exc!r}")
                    await asyncio.sleep(0.05)
                    continue
                if r.status_code == 202:
                    accepted.add(int(r.json()["id"]))
                else:
                    failures.append(f"{r.status_code} {r.text}")

    await asyncio.gather(*(client(n) for n in range(clients)))
    return failures


class Store:
    """The database of a fault test, SQLite or PostgreSQL: its URL, the witness, the verdict."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path, dialect: str) -> None:
        self.dialect = dialect
        if dialect == "sqlite":
            self.path = tmp_path / "o.sqlite3"
            self.url = f"sqlite:///{self.path}"
        else:
            self.url = request.getfixturevalue("database")

    def witness(self) -> None:
        if self.dialect == "sqlite":
            sqlite_witness(self.path)
        else:
            from .order_checks import pg_witness

            pg_witness(self.url)

    def verdict(self, accepted: set[int]) -> Verdict:
        if self.dialect == "sqlite":
            return db_verdict(self.path, accepted)
        from .order_checks import pg_verdict

        return pg_verdict(self.url, accepted)

    def all_done(self, accepted: set[int]) -> bool:
        return self.verdict(accepted).lost == 0


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_kill_9_at_random_moments_during_a_stream_of_orders(
    request: pytest.FixtureRequest, tmp_path: Path, dialect: str
) -> None:
    """``orders serve`` (web and embedded workers) killed while 8 clients post orders: every
    202 is completed once after a restart, and no client met anything but the kill."""
    rounds = 5 if FULL else 2 if dialect == "sqlite" else 1
    store = Store(request, tmp_path, dialect)
    accepted: set[int] = set()
    failures: list[str] = []
    rng = random.Random(20261125)
    for n in range(rounds):
        with running(tmp_path, store.url, name=f"round{n}") as svc:
            if n == 0:
                store.witness()

            async def one_round(svc: Service = svc) -> None:
                stop, fault = asyncio.Event(), asyncio.Event()
                streaming = asyncio.create_task(stream_orders(svc.url, accepted, stop, 8, fault))
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                fault.set()
                svc.kill9()  # while requests are in flight and jobs are running
                stop.set()
                failures.extend(await streaming)

            asyncio.run(one_round())
    with running(tmp_path, store.url, name="final"):
        assert wait_until(lambda: store.all_done(accepted), 90), "orders left unfinished"
    result = store.verdict(accepted)
    print(f"\nkill -9 {dialect} rounds={rounds} accepted={len(accepted)} {result}")
    assert not failures, failures[:5]
    assert accepted and result.lost == 0 and result.doubled == 0 and result.disagreeing == 0


def _running_by_worker(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT worker, COUNT(*) FROM qj_jobs WHERE state = 'running' GROUP BY worker"
        ).fetchall()
    return {w: n for w, n in rows if w}


def _held_by(db: Path, pid: int) -> set[int]:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT id FROM qj_jobs WHERE state = 'running' AND worker LIKE ?", (f"%:{pid}:%",)
        ).fetchall()
    return {int(i) for (i,) in rows}


def _attempts(db: Path, ids: set[int]) -> dict[int, tuple[str, int]]:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        rows = conn.execute("SELECT id, state, attempts FROM qj_jobs").fetchall()
    return {int(i): (s, int(a)) for i, s, a in rows if int(i) in ids}


@pytest.mark.parametrize("fault", ["stall", full_only("kill -9", id="kill -9")])
def test_a_lost_worker_process_jobs_are_finished_by_the_other(tmp_path: Path, fault: str) -> None:
    """Two ``orders worker`` processes; one is stalled past its leases (then resumed), or
    killed, while it holds jobs: the other runs those jobs again and every order is done
    once; a stalled worker's late outcome writes are refused."""
    db = tmp_path / "o.sqlite3"
    url = f"sqlite:///{db}"
    web_env = {"EMBEDDED_WORKERS": "0"}
    with (
        running(tmp_path, url, env=web_env) as web,
        running(tmp_path, url, command="worker", name="w1", env={"WORKER_CONCURRENCY": "4"}) as w1,
        running(tmp_path, url, command="worker", name="w2", env={"WORKER_CONCURRENCY": "4"}),
        httpx.Client(base_url=web.url, timeout=10) as http,
    ):
        sqlite_witness(db)
        slow = {**ORDER, "processing_seconds": 1.0}
        accepted = {
            int(http.post("/orders", json=slow, headers=auth(VIP_KEY)).json()["id"])
            for _ in range(12)
        }
        assert wait_until(lambda: len(_running_by_worker(db)) == 2, 20)
        victim = w1
        held = freeze_holding(victim, lambda pid: _held_by(db, pid))
        if fault == "kill -9":
            victim.kill9()
        assert wait_until(lambda: all_done(db, accepted), 60), db_verdict(db, accepted)
        if fault == "stall":
            victim.signal(signal.SIGCONT)  # its leases are gone: every write it tries is late
            refused = lambda: victim.output().count("lease lost")  # noqa: E731
            tried = lambda: refused() >= len(held) or db_verdict(db, accepted).doubled  # noqa: E731
            wait_until(tried, 30)
    result = db_verdict(db, accepted)
    reruns = _attempts(db, held)
    print(
        f"\nworker {fault}: orders={len(accepted)} held_by_victim={len(held)} "
        f"rerun={sum(1 for _, a in reruns.values() if a > 1)} {result}"
    )
    # Every job the victim held ran again elsewhere and succeeded.
    assert reruns == {i: ("succeeded", 2) for i in held}
    assert result.lost == 0 and result.doubled == 0 and result.disagreeing == 0
    if fault == "stall":  # each late outcome of the victim was refused, and it said so
        assert refused() >= len(held), victim.output()


def test_three_processes_share_one_sqlite_file_without_locked_errors(tmp_path: Path) -> None:
    total = 5000 if FULL else 1000
    db = tmp_path / "o.sqlite3"
    url = f"sqlite:///{db}"
    env = {"WORKER_CONCURRENCY": "8"}
    with (
        running(tmp_path, url, name="web1", env=env) as web1,
        running(tmp_path, url, name="web2", env=env) as web2,
        running(tmp_path, url, command="worker", name="worker", env=env) as worker,
    ):
        sqlite_witness(db)
        accepted: set[int] = set()
        failures: list[str] = []

        async def load() -> None:
            sem = asyncio.Semaphore(32)
            async with (
                httpx.AsyncClient(base_url=web1.url, timeout=30) as a,
                httpx.AsyncClient(base_url=web2.url, timeout=30) as b,
            ):

                async def one(n: int) -> None:
                    async with sem:
                        http = a if n % 2 else b
                        key = VIP_KEY if n % 3 == 0 else REGULAR_KEY
                        r = await http.post("/orders", json=ORDER, headers=auth(key))
                        if r.status_code == 202:
                            accepted.add(int(r.json()["id"]))
                        else:
                            failures.append(f"{r.status_code} {r.text}")

                await asyncio.gather(*(one(n) for n in range(total)))

        started = time.monotonic()
        asyncio.run(load())
        elapsed = time.monotonic() - started
        assert wait_until(lambda: all_done(db, accepted), 120)
        outputs = web1.output() + web2.output() + worker.output()
    lost, doubled, disagreeing = db_verdict(db, accepted).counts
    locked = outputs.lower().count("database is locked")
    print(
        f"\nshared SQLite: processes=3 orders={total} accepted={len(accepted)} "
        f"({total / elapsed:.0f}/s) lost={lost} doubled={doubled} locked_errors={locked}"
    )
    assert not failures, failures[:5]
    assert (
        len(accepted) == total and lost == 0 and doubled == 0 and disagreeing == 0 and locked == 0
    )


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if result.returncode != 0:
        if FULL:
            pytest.fail(f"cannot mount a tmpfs here: {result.stderr.decode()}")
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_answers_503_keeps_serving_and_keeps_accepted_orders(
    tmp_path: Path, small_tmpfs: Path
) -> None:
    db = small_tmpfs / "o.sqlite3"
    url = f"sqlite:///{db}"
    big = {"items": [{"sku": f"S-{i}", "quantity": 1} for i in range(100)], "processing_seconds": 0}
    accepted: set[int] = set()
    with (
        running(tmp_path, url, env={"EMBEDDED_WORKERS": "0"}) as svc,
        httpx.Client(base_url=svc.url, timeout=10) as http,
    ):
        full = None
        polls: list[int] = []  # /readyz while the disk fills, one poll after each order
        for _ in range(2000):
            r = http.post("/orders", json=big, headers=auth(VIP_KEY))
            if r.status_code != 202:
                full = r
                break
            accepted.add(int(r.json()["id"]))
            polls.append(http.get("/readyz").status_code)
        assert full is not None, "the 1 MB disk never filled"
        assert full.status_code == 503 and full.headers["Retry-After"]
        assert full.json()["error"]["code"] == "unavailable"
        # Readiness tells the load balancer at its very next poll that writes fail, though its
        # own small probe may still fit on the disk.
        after = http.get("/readyz")
        assert after.status_code == 503, (after.text, polls[-5:])
        assert http.get("/healthz").status_code == 200  # the process stays up
        ready = http.get("/readyz").json()
        assert ready["status"] == "unavailable"
        assert ready["checks"]["database"].startswith("unavailable")
        for order_id in list(accepted)[:20]:
            assert http.get(f"/orders/{order_id}", headers=auth(VIP_KEY)).status_code == 200
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        stored = {int(i) for (i,) in conn.execute("SELECT id FROM orders")}
    print(f"\nfull disk: accepted={len(accepted)} then 503; intact={len(stored & accepted)}")
    assert accepted <= stored


def test_an_unwritable_database_stops_start_up_clearly_and_keeps_its_orders(
    tmp_path: Path, small_tmpfs: Path
) -> None:
    db = small_tmpfs / "o.sqlite3"
    url = f"sqlite:///{db}"
    with (
        running(tmp_path, url, env={"EMBEDDED_WORKERS": "0"}) as svc,
        httpx.Client(base_url=svc.url, timeout=10) as http,
    ):
        sqlite_witness(db)
        order = http.post("/orders", json=ORDER, headers=auth(VIP_KEY)).json()
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    try:
        result = subprocess.run(
            [str(Path(os.sys.executable).parent / "orders"), "serve"],  # type: ignore[attr-defined]
            env=service_env(url, 1),
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_tmpfs)], check=True)
    assert result.returncode == 2, result.stderr
    assert "DATABASE_URL" in result.stderr and "not writable" in result.stderr
    with running(tmp_path, url, name="writable-again"):
        assert wait_until(lambda: all_done(db, {int(order["id"])}), 30)


def test_a_corrupt_database_file_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    db = tmp_path / "corrupt.sqlite3"
    db.write_bytes(b"this is not a database, " * 400)
    before = db.read_bytes()
    result = subprocess.run(
        [str(Path(os.sys.executable).parent / "orders"), "serve"],  # type: ignore[attr-defined]
        env=service_env(f"sqlite:///{db}", 1),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "not a database" in result.stderr
    assert db.read_bytes() == before  # nothing was overwritten


@pytest.mark.parametrize(
    "sig", [pytest.param(signal.SIGTERM, id="SIGTERM"), full_only(signal.SIGINT, id="SIGINT")]
)
def test_a_signal_mid_stream_exits_zero_and_loses_nothing(
    tmp_path: Path, sig: signal.Signals
) -> None:
    db = tmp_path / "o.sqlite3"
    url = f"sqlite:///{db}"
    accepted: set[int] = set()
    failures: list[str] = []
    env = {"SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)}
    with running(tmp_path, url, env=env) as svc:
        sqlite_witness(db)

        async def round_() -> None:
            stop, fault = asyncio.Event(), asyncio.Event()
            streaming = asyncio.create_task(stream_orders(svc.url, accepted, stop, 8, fault))
            await asyncio.sleep(1.0)
            fault.set()
            svc.signal(sig, group=sig == signal.SIGINT)  # Ctrl-C reaches the whole group
            code = await asyncio.to_thread(svc.wait, SHUTDOWN_TIMEOUT + 5)
            stop.set()
            failures.extend(await streaming)
            assert code == 0

        asyncio.run(round_())
    with running(tmp_path, url, name="after"):
        assert wait_until(lambda: all_done(db, accepted), 60)
    lost, doubled, disagreeing = db_verdict(db, accepted).counts
    print(f"\n{sig.name} mid-stream: accepted={len(accepted)} lost={lost} doubled={doubled}")
    assert not failures, failures[:5]
    assert accepted and lost == 0 and doubled == 0 and disagreeing == 0
