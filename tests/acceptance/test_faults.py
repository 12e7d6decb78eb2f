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

from .order_checks import Verdict, verdict
from .procs import (
    REGULAR_KEY,
    VIP_KEY,
    Service,
    auth,
    running,
    service_env,
    wait_until,
)

pytestmark = pytest.mark.acceptance

FULL = os.environ.get("CI", "").lower() in ("1", "true", "yes") or bool(
    os.environ.get("FULL_FAULTS")
)
ORDER = {"items": [{"sku": "F-1", "quantity": 1}], "processing_seconds": 0.02}


def db_verdict(db: Path, accepted: set[int]) -> Verdict:
    """The orders, their jobs and fulfilments, read straight from the database file."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return verdict(lambda sql: conn.execute(sql).fetchall(), accepted)


def all_done(db: Path, accepted: set[int]) -> bool:
    return db_verdict(db, accepted).lost == 0


async def stream_orders(url: str, accepted: set[int], stop: asyncio.Event, clients: int) -> int:
    """Post orders from ``clients`` concurrent clients until ``stop``; collect the 202s."""
    errors = 0

    async def client(n: int) -> None:
        nonlocal errors
        key = VIP_KEY if n % 2 else REGULAR_KEY
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            while not stop.is_set():
                try:
                    r = await http.post("/orders", json=ORDER, headers=auth(key))
                except httpx.HTTPError:
                    errors += 1
                    await asyncio.sleep(0.05)
                    continue
                if r.status_code == 202:
                    accepted.add(int(r.json()["id"]))
                else:
                    errors += 1

    await asyncio.gather(*(client(n) for n in range(clients)))
    return errors


def test_kill_9_at_random_moments_during_a_stream_of_orders(tmp_path: Path) -> None:
    rounds = 5 if FULL else 2
    db = tmp_path / "o.sqlite3"
    url = f"sqlite:///{db}"
    accepted: set[int] = set()
    rng = random.Random(20261125)
    for n in range(rounds):
        with running(tmp_path, url, name=f"round{n}") as svc:

            async def one_round(svc: Service = svc) -> None:
                stop = asyncio.Event()
                streaming = asyncio.create_task(stream_orders(svc.url, accepted, stop, 8))
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                svc.kill9()  # while requests are in flight and jobs are running
                stop.set()
                await streaming

            asyncio.run(one_round())
    with running(tmp_path, url, name="final"):
        assert wait_until(lambda: all_done(db, accepted), 90), "orders left unfinished"
    result = db_verdict(db, accepted)
    print(f"\nkill -9 rounds={rounds} accepted={len(accepted)} {result}")
    assert accepted and result.lost == 0 and result.doubled == 0 and result.disagreeing == 0


def _running_by_worker(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT worker, COUNT(*) FROM qj_jobs WHERE state = 'running' GROUP BY worker"
        ).fetchall()
    return {w: n for w, n in rows if w}


def test_a_killed_worker_process_jobs_are_finished_by_the_other(tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite3"
    url = f"sqlite:///{db}"
    web_env = {"EMBEDDED_WORKERS": "0"}
    with (
        running(tmp_path, url, env=web_env) as web,
        running(tmp_path, url, command="worker", name="w1", env={"WORKER_CONCURRENCY": "4"}) as w1,
        running(tmp_path, url, command="worker", name="w2", env={"WORKER_CONCURRENCY": "4"}) as w2,
        httpx.Client(base_url=web.url, timeout=10) as http,
    ):
        slow = {**ORDER, "processing_seconds": 1.0}
        accepted = {
            int(http.post("/orders", json=slow, headers=auth(VIP_KEY)).json()["id"])
            for _ in range(24)
        }
        assert wait_until(lambda: len(_running_by_worker(db)) == 2, 20)
        victim = w1 if any(f":{w1.proc.pid}:" in w for w in _running_by_worker(db)) else w2  # type: ignore[union-attr]
        held = [w for w in _running_by_worker(db) if f":{victim.proc.pid}:" in w]  # type: ignore[union-attr]
        assert held
        victim.kill9()
        assert wait_until(lambda: all_done(db, accepted), 60)
    lost, doubled, disagreeing = db_verdict(db, accepted).counts
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rerun = conn.execute("SELECT COUNT(*) FROM qj_jobs WHERE attempts > 1").fetchone()[0]
    print(
        f"\nworker kill: orders={len(accepted)} rerun_after_lease={rerun} "
        f"lost={lost} doubled={doubled}"
    )
    assert rerun > 0 and lost == 0 and doubled == 0 and disagreeing == 0


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
        for _ in range(2000):
            r = http.post("/orders", json=big, headers=auth(VIP_KEY))
            if r.status_code != 202:
                full = r
                break
            accepted.add(int(r.json()["id"]))
        assert full is not None, "the 1 MB disk never filled"
        assert full.status_code == 503 and full.headers["Retry-After"]
        assert full.json()["error"]["code"] == "unavailable"
        assert http.get("/healthz").status_code == 200  # the process stays up
        # Readiness tells the load balancer: a real write fails (its answer lives ~1 s).
        assert wait_until(lambda: http.get("/readyz").status_code == 503, 10)
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


def test_sigterm_mid_stream_exits_zero_and_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite3"
    url = f"sqlite:///{db}"
    accepted: set[int] = set()
    env = {"SHUTDOWN_TIMEOUT": "1"}
    with running(tmp_path, url, env=env) as svc:

        async def round_() -> None:
            stop = asyncio.Event()
            streaming = asyncio.create_task(stream_orders(svc.url, accepted, stop, 8))
            await asyncio.sleep(1.0)
            svc.signal(signal.SIGTERM)
            code = await asyncio.to_thread(svc.wait, 1 + 3)
            stop.set()
            await streaming
            assert code == 0

        asyncio.run(round_())
    with running(tmp_path, url, name="after"):
        assert wait_until(lambda: all_done(db, accepted), 60)
    lost, doubled, disagreeing = db_verdict(db, accepted).counts
    print(f"\nSIGTERM mid-stream: accepted={len(accepted)} lost={lost} doubled={doubled}")
    assert accepted and lost == 0 and doubled == 0 and disagreeing == 0
