"""Periodic jobs across real processes: two and three ``quart-jobs worker`` processes on one
SQLite file, and on one PostgreSQL database, enqueue every moment of a schedule exactly once and
run it once; processes started later add no second job for a moment already enqueued; and a
moment whose enqueue PostgreSQL cut off in every process (`pg_terminate_backend`) is enqueued
once they reconnect."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.acceptance
#: How many every-second moments the processes must have run together before they stop.
MOMENTS = 6
COMMAND = [str(BIN / "quart-jobs"), "--app", "tests.acceptance.periodic_app:jobs"]


def start_workers(url: str, log: Path, count: int, out: Path) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "QUART_JOBS_DATABASE_URL": url,
        "PERIODIC_LOG": str(log),
        "PYTHONPATH": str(ROOT),
    }
    procs = []
    for i in range(count):
        with open(out / f"worker-{count}-{i}.log", "ab") as output:
            procs.append(
                subprocess.Popen(
                    [*COMMAND, "worker", "--concurrency", "2"],
                    env=env,
                    cwd=ROOT,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            )
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    return [proc.wait(30) for proc in procs]


def runs(log: Path) -> list[tuple[str, float, int]]:
    if not log.exists():
        return []
    complete = log.read_text().split("\n")[:-1]  # a line being written is not complete yet
    return [(n, float(t), int(p)) for n, t, p in (line.split() for line in complete)]


def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the workers did not get there in time"
        time.sleep(0.1)


def jobs_by_key(url: str) -> dict[str, tuple[str, int]]:
    """Every job's key, state and attempts, read from the store as an operator would."""
    query = "SELECT key, state, attempts FROM qj_jobs"
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(query).fetchall()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            rows = conn.execute(query).fetchall()
    return {key: (state, attempts) for key, state, attempts in rows}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/jobs.sqlite3"
        return
    from .pg import fresh_database

    yield from fresh_database()


@pytest.mark.parametrize("processes", [2, 3])
def test_each_moment_is_enqueued_and_run_once_by_many_processes(
    store_url: str, processes: int, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    began = time.time()
    procs = start_workers(store_url, log, processes, tmp_path)
    try:
        wait_for(lambda: sum(1 for r in runs(log) if r[0] == "every_second") >= MOMENTS)
    finally:
        codes = stop(procs)
    assert codes == [0] * processes
    # Started again, later, together: the hour's moment is there already; no second job.
    again = start_workers(store_url, log, processes, tmp_path)
    try:
        wait_for(lambda: sum(1 for r in runs(log) if r[0] == "every_second") >= 2 * MOMENTS)
    finally:
        assert stop(again) == [0] * processes

    ended = time.time()
    ran = runs(log)
    per_moment = Counter((name, moment) for name, moment, _ in ran)
    assert max(per_moment.values()) == 1, "a moment ran twice"
    stored = jobs_by_key(store_url)
    seconds = [k for k in stored if k.startswith("periodic:every_second:")]
    hours = [k for k in stored if k.startswith("periodic:hourly:")]
    assert len(seconds) == len(set(seconds)) >= 2 * MOMENTS
    # The latest hour, enqueued once by 2 x processes at start-up (and the next one, once,
    # if the test ran across a whole hour).
    hour_moments = sorted(int(k.rsplit(":", 1)[1]) for k in hours)
    assert hour_moments == list(range(int(began // 3600 * 3600), int(ended) + 1, 3600))
    succeeded = {key for key, (state, _) in stored.items() if state == "succeeded"}
    assert {f"periodic:{name}:{round(moment)}" for name, moment, _ in ran} == succeeded
    assert all(attempts == 1 for state, attempts in stored.values() if state == "succeeded")
    print(  # the counts for the report
        f"{processes} processes: {len(seconds)} every-second moments, {len(hours)} hourly, "
        f"{len(ran)} runs, by {len({pid for _, _, pid in ran})} processes"
    )


def test_the_schedules_command_lists_the_next_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QUART_JOBS_DATABASE_URL": "memory://"}
    table = subprocess.run(
        [*COMMAND, "schedules"], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["name", "schedule", "next", "run", "(UTC)", "in", "queue"]
    assert lines[2].split()[:3] == ["every_second", "every", "1s"]
    assert lines[3].split()[:4] == ["hourly", "cron", "0", "*"]
    answer = subprocess.run(
        [*COMMAND, "schedules", "--json"], env=env, cwd=ROOT, capture_output=True, check=True
    )
    found = {s["name"]: s for s in json.loads(answer.stdout)}
    assert set(found) == {"every_second", "hourly"}
    now = time.time()
    assert now < found["hourly"]["next_run_at"] <= now + 3600
    assert found["hourly"]["next_run_at"] % 3600 == 0
    assert (found["hourly"]["cron"], found["every_second"]["every"]) == ("0 * * * *", 1.0)
    no_app = subprocess.run(
        [str(BIN / "quart-jobs"), "--database-url", f"sqlite:///{tmp_path}/x.sqlite3", "schedules"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert no_app.returncode == 2
    assert "give --app MODULE:APP" in no_app.stderr and "Traceback" not in no_app.stderr


@pytest.mark.postgres
def test_a_moment_whose_connections_are_terminated_is_enqueued_once_it_reconnects(
    tmp_path: Path,
) -> None:
    """Three worker processes, all cut off from PostgreSQL as they enqueue one moment: each
    process's enqueue of that moment waits on a lock the test holds, then the test terminates
    every connection of the processes (``pg_terminate_backend``). They reconnect, and the moment
    is enqueued once anyway, as is every moment before and after it; each scheduler logged the
    failure (the moment's enqueue was cut in every process)."""
    import psycopg

    from .pg import fresh_database

    databases = fresh_database()
    url = next(databases)
    log = tmp_path / "runs.log"
    procs = start_workers(url, log, 3, tmp_path)
    try:
        wait_for(lambda: sum(1 for r in runs(log) if r[0] == "every_second") >= 3)
        moment = int(time.time()) + 2
        time.sleep(max(0.0, moment - 0.4 - time.time()))
        with psycopg.connect(url) as conn:
            conn.execute("LOCK TABLE qj_jobs IN ACCESS EXCLUSIVE MODE")
            # Every statement of the processes on the jobs waits now, their schedulers' enqueues
            # of the moment among them (pg_stat_activity does not tell those apart: they wait
            # in the parse step, still showing their previous query).
            time.sleep(max(0.0, moment + 0.6 - time.time()))
            terminated = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
            conn.rollback()  # releases the lock
        assert len(terminated) >= len(procs)
        assert all(p.poll() is None for p in procs), "a worker died of its lost connections"
        wait_for(lambda: any(int(k.rsplit(":", 1)[1]) > moment + 3 for k in seconds(url)))
    finally:
        codes = stop(procs)
        stored = jobs_by_key(url)
        databases.close()
    assert codes == [0, 0, 0]
    outputs = [p.read_text() for p in sorted(tmp_path.glob("worker-3-*.log"))]
    assert all("scheduler: store unavailable" in output for output in outputs)
    enqueued = sorted(int(k.rsplit(":", 1)[1]) for k in stored if k.startswith(EVERY_SECOND))
    assert moment in enqueued, f"the moment {moment} was lost: {enqueued}"
    assert enqueued == list(range(enqueued[0], enqueued[-1] + 1)), "a moment was skipped"


EVERY_SECOND = "periodic:every_second:"


def seconds(url: str) -> list[str]:
    try:
        return [k for k in jobs_by_key(url) if k.startswith(EVERY_SECOND)]
    except Exception:  # the database is still reconnecting its clients
        return []
