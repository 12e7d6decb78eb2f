"""The ``quart-jobs`` command line as a subprocess, against a SQLite file seeded beforehand:
what it prints, what it changes, and its exit codes (0 done, 1 not found or wrong state,
2 bad usage or configuration)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from quart_jobs.backends import Outcome
from quart_jobs.backends.sqlite.backend import SQLiteBackend
from quart_jobs.models import JobState, Lease, NewJob, Progress, Tier

BIN = Path(sys.executable).parent
DAY = 86400.0
pytestmark = pytest.mark.acceptance


@dataclass
class Seeded:
    url: str
    path: Path
    queued: int
    running: int
    failed: list[int]  # two of task "mail.send" (one VIP), one of "report.build"
    succeeded_old: int  # finished eight days ago
    cancelled_old: int
    succeeded_new: int


async def _seed(path: Path) -> Seeded:
    backend = SQLiteBackend(path, synchronous="NORMAL")
    await backend.open()
    now = time.time()

    async def add(task: str, priority: int = int(Tier.REGULAR), at: float = now) -> int:
        new = NewJob(task=task, args=(1, "x"), priority=priority, max_attempts=1)
        (result,) = await backend.enqueue([new], at)
        return result.job.id

    async def end(job_id: int, state: JobState, at: float, **outcome: Any) -> None:
        (job,) = await backend.claim("cli-test", 1, at, 30)
        assert job.id == job_id
        lease = Lease(job.id, job.lease_token or "")
        assert await backend.finish([Outcome(lease, state, **outcome)], at) == [True]

    old = now - 8 * DAY
    succeeded_old = await add("mail.send", at=old)
    await end(succeeded_old, JobState.SUCCEEDED, old)
    cancelled_old = await add("mail.send", at=old)
    await backend.cancel(cancelled_old, old)
    failed = []
    for task, priority in (
        ("mail.send", int(Tier.VIP)),
        ("mail.send", int(Tier.REGULAR)),
        ("report.build", int(Tier.REGULAR)),
    ):
        job_id = await add(task, priority)
        await end(job_id, JobState.FAILED, now, error="ValueError: bad", traceback="TB here")
        failed.append(job_id)
    succeeded_new = await add("report.build")
    await end(succeeded_new, JobState.SUCCEEDED, now, result='{"ok":true}')
    running = await add("report.build", int(Tier.VIP))
    (claimed,) = await backend.claim("cli-test", 1, now, 300)
    lease = Lease(claimed.id, claimed.lease_token or "")
    await backend.heartbeat([lease], now, 300, [(lease, Progress(0.4, "resized 4 of 10"))])
    queued = await add("mail.send")
    await backend.close()
    return Seeded(
        f"sqlite:///{path}",
        path,
        queued,
        running,
        failed,
        succeeded_old,
        cancelled_old,
        succeeded_new,
    )


@pytest.fixture
def db(tmp_path: Path) -> Seeded:
    return asyncio.run(_seed(tmp_path / "jobs.sqlite3"))


def env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QUART_", "DATABASE_URL", "ORDERS_"))
    }


def qj(*args: str, url: str | None = None, **extra_env: str) -> subprocess.CompletedProcess[str]:
    prefix = ["--database-url", url] if url else []
    return subprocess.run(
        [str(BIN / "quart-jobs"), *prefix, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env(), **extra_env},
        check=False,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def state_of(db: Seeded, job_id: int) -> str | None:
    with sqlite3.connect(db.path) as conn:
        row = conn.execute("SELECT state FROM qj_jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else str(row[0])


def test_stats_matches_the_database(db: Seeded) -> None:
    data = as_json(qj("stats", "--json", url=db.url))
    with sqlite3.connect(db.path) as conn:
        rows = conn.execute("SELECT state, priority, COUNT(*) FROM qj_jobs GROUP BY 1, 2")
        expected = {(s, {0: "vip", 10: "regular"}[p]): n for s, p, n in rows}
    for tier, counts in data["counts"].items():
        for state, n in counts.items():
            assert n == expected.get((state, tier), 0), (tier, state)
    assert data["totals"] == {
        "waiting": 0,
        "queued": 1,
        "running": 1,
        "succeeded": 2,
        "failed": 3,
        "cancelled": 1,
    }
    assert list(data["oldest_waiting_seconds"]) == ["regular"]
    assert 0 <= data["oldest_waiting_seconds"]["regular"] < 60

    table = qj("stats", url=db.url)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "tier",
        "waiting",
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "oldest",
        "waiting",
    ]
    assert lines[2].split()[:7] == ["vip", "0", "0", "1", "0", "1", "0"]
    assert next(line for line in lines if line.startswith("all")).split() == [
        "all",
        "0",
        "1",
        "1",
        "2",
        "3",
        "1",
    ]
    # Then the counts by queue.
    queue_line = next(line for line in lines if line.startswith("default"))
    assert queue_line.split() == ["default", "0", "1", "1", "2", "3", "1"]
    # Then who serves what: no worker runs, so the ready job waits for nobody.
    assert "live workers: none (start one: quart-jobs worker --app MODULE:APP)" in lines
    (unserved,) = data["unserved"]
    assert f"unserved: {unserved['message']}" == lines[-1]
    assert data["workers"] == []


def test_list_filters_by_state_tier_and_task(db: Seeded) -> None:
    def ids(*args: str) -> list[int]:
        return [j["id"] for j in as_json(qj("list", "--json", *args, url=db.url))]

    assert ids("--state", "failed") == sorted(db.failed, reverse=True)
    assert ids("--state", "failed", "--tier", "vip") == [db.failed[0]]
    assert ids("--state", "failed", "--task", "mail.send") == [db.failed[1], db.failed[0]]
    assert ids("--limit", "2") == [db.queued, db.running]
    assert ids("--tier", "10", "--task", "nothing") == []
    text = qj("list", "--state", "failed", url=db.url)
    assert text.returncode == 0 and "ValueError: bad" in text.stdout
    bad = qj("list", "--tier", "gold", url=db.url)
    assert bad.returncode == 2 and "unknown tier" in bad.stderr
    assert qj("list", "--state", "sleeping", url=db.url).returncode == 2


def test_show_prints_a_whole_job_or_exits_1(db: Seeded) -> None:
    job = as_json(qj("show", str(db.failed[0]), "--json", url=db.url))
    assert job["state"] == "failed" and job["tier"] == "vip" and job["args"] == [1, "x"]
    assert job["error"] == "ValueError: bad" and job["traceback"] == "TB here"
    text = qj("show", str(db.failed[0]), url=db.url)
    assert "mail.send" in text.stdout and text.stdout.rstrip().endswith("TB here")
    missing = qj("show", "99999", url=db.url)
    assert missing.returncode == 1 and "no job has id 99999" in missing.stderr


def test_show_prints_the_progress_a_running_job_reported(db: Seeded) -> None:
    job = as_json(qj("show", str(db.running), "--json", url=db.url))
    assert (job["state"], job["progress"]) == ("running", 0.4)
    assert job["progress_message"] == "resized 4 of 10"
    text = qj("show", str(db.running), url=db.url).stdout
    assert "progress: 40% resized 4 of 10" in text, text
    queued = qj("show", str(db.queued), url=db.url).stdout
    assert "progress: -" in queued, queued


def test_retry_one_job_then_refuse_a_second_time(db: Seeded) -> None:
    target = db.failed[2]
    result = qj("retry", str(target), url=db.url)
    assert result.returncode == 0 and f"job {target} queued again" in result.stdout
    assert state_of(db, target) == "queued"
    again = qj("retry", str(target), url=db.url)
    assert again.returncode == 1 and "queued" in again.stderr
    assert qj("retry", "99999", url=db.url).returncode == 1
    assert qj("retry", url=db.url).returncode == 2  # neither an id nor --failed
    assert qj("retry", "1", "--failed", url=db.url).returncode == 2


def test_retry_all_failed_of_a_task_with_a_count(db: Seeded) -> None:
    result = qj("retry", "--failed", "--task", "mail.send", url=db.url)
    assert result.returncode == 0, result.stderr
    assert "2 failed jobs queued again" in result.stdout
    assert "retrying" in result.stderr  # the progress bar
    assert [state_of(db, i) for i in db.failed] == ["queued", "queued", "failed"]
    assert as_json(qj("retry", "--failed", "--json", url=db.url)) == {"retried": 1}
    assert as_json(qj("retry", "--failed", "--json", url=db.url)) == {"retried": 0}


def test_cancel_a_queued_job_and_exit_1_for_a_finished_one(db: Seeded) -> None:
    job = as_json(qj("cancel", str(db.queued), "--json", url=db.url))
    assert job["state"] == "cancelled" and state_of(db, db.queued) == "cancelled"
    running = qj("cancel", str(db.running), url=db.url)
    assert running.returncode == 0 and "asked it to stop" in running.stdout
    done = qj("cancel", str(db.succeeded_new), url=db.url)
    assert done.returncode == 1 and "succeeded" in done.stderr
    assert qj("cancel", "99999", url=db.url).returncode == 1


@pytest.mark.parametrize("command", ["show", "retry", "cancel"])
def test_an_id_no_job_can_have_is_a_usage_error(db: Seeded, command: str) -> None:
    for job_id in (str(2**63), "0"):
        result = qj(command, job_id, url=db.url)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and "OverflowError" not in result.stderr
        assert f"{job_id} is not in the range 1<=x<={2**63 - 1}" in result.stderr
    assert qj("list", "--before-id", str(2**63), url=db.url).returncode == 2


def test_purge_removes_only_old_finished_jobs(db: Seeded) -> None:
    report = as_json(qj("purge", "--older-than", "7d", "--json", url=db.url))
    assert report["removed"] == 2
    assert report["by_state"] == {"cancelled": 1, "failed": 0, "succeeded": 1}
    assert state_of(db, db.succeeded_old) is None and state_of(db, db.cancelled_old) is None
    for kept in (db.queued, db.running, db.succeeded_new, *db.failed):
        assert state_of(db, kept) is not None
    text = qj("purge", "--older-than", "1h", "--state", "failed", url=db.url)
    assert text.returncode == 0
    assert text.stdout.startswith("removed 0 jobs finished before ")
    assert "(0 failed)" in text.stdout
    bad = qj("purge", "--older-than", "a week", url=db.url)
    assert bad.returncode == 2 and "--older-than" in bad.stderr
    assert qj("purge", url=db.url).returncode == 2
    assert qj("purge", "--older-than", "1d", "--state", "queued", url=db.url).returncode == 2


def test_migrate_and_configuration_errors(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.sqlite3"
    result = qj("migrate", url=f"sqlite:///{fresh}")
    assert result.returncode == 0 and "schema up to date" in result.stdout
    assert fresh.exists()
    missing_dir = qj("stats", url=f"sqlite:///{tmp_path}/no/such/dir.sqlite3")
    assert missing_dir.returncode == 2 and "does not exist" in missing_dir.stderr
    unknown = qj("stats", url="mysql://x")
    assert unknown.returncode == 2 and "unknown scheme" in unknown.stderr
    nothing = qj("stats")
    assert nothing.returncode == 2 and "--database-url" in nothing.stderr
    from_env = qj("stats", "--json", DATABASE_URL=f"sqlite:///{fresh}")
    assert as_json(from_env)["totals"]["queued"] == 0


#: A small app with the jobs extension (its ``jobs`` commands) and the admin.
APP = "tests.integration.admin_app:serve"
ROOT = Path(__file__).resolve().parents[2]


def app_env(url: str) -> dict[str, str]:
    return {"ADMIN_APP_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}


def test_the_same_commands_as_quart_jobs_in_the_app_cli(db: Seeded) -> None:
    result = subprocess.run(
        [str(BIN / "quart"), "--app", APP, "jobs", "stats", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env(), **app_env(db.url)},
        check=False,
    )
    data = as_json(result)
    assert data["totals"]["failed"] == 3
    show = subprocess.run(
        [str(BIN / "quart"), "--app", APP, "jobs", "show", "99999"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env(), **app_env(db.url)},
        check=False,
    )
    assert show.returncode == 1 and "no job has id 99999" in show.stderr


HOOKED_APP = """
from pathlib import Path

from quart import Quart

from quart_jobs import QuartJobs

jobs = QuartJobs()


@jobs.periodic(every=60)
async def tick() -> None:
    pass


def create_app() -> Quart:
    app = Quart(__name__)
    app.config["QUART_JOBS_DATABASE_URL"] = "sqlite:///jobs.sqlite3"
    jobs.init_app(app)

    async def migrate_app() -> None:
        with Path("on_open.log").open("a") as log:
            log.write("ran\\n")

    jobs.on_open.append(migrate_app)
    return app
"""


def test_reading_commands_do_not_run_the_apps_on_open_hooks(tmp_path: Path) -> None:
    (tmp_path / "hooked.py").write_text(HOOKED_APP)
    marker = tmp_path / "on_open.log"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "quart-jobs"), "--app", "hooked:create_app", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env(),
            cwd=tmp_path,
            check=False,
        )

    assert run("migrate").returncode == 0  # creates the store: the app's migrations run
    assert marker.read_text() == "ran\n"
    for command in (["list"], ["stats"], ["show", "1"], ["schedules"]):
        result = run(*command)
        assert result.returncode in (0, 1), result.stderr  # show 1: no such job, exit 1
        assert marker.read_text() == "ran\n", command
    assert run("cancel", "1").returncode == 1  # changes jobs: the app's set-up runs
    assert marker.read_text() == "ran\nran\n"


def test_stats_say_why_jobs_wait(db: Seeded) -> None:
    # The seeded store has one ready job and no live worker: nobody serves it.
    data = as_json(qj("stats", "--json", url=db.url))
    assert data["waiting"] == {"default": {"unserved": {"count": 1, "at_least": False}}}
    lines = qj("stats", url=db.url).stdout.splitlines()
    at = lines.index("why jobs wait (each job under the first reason that holds it):")
    assert lines[at + 1].split() == [
        "queue",
        "dependency",
        "not",
        "due",
        "paused",
        "unserved",
        "rate",
        "limit",
        "concurrency",
    ]
    assert lines[at + 3].split() == ["default", "-", "-", "-", "1", "-", "-"]
    # A paused queue holds its jobs first, whoever serves them.
    assert qj("pause", "default", url=db.url).returncode == 0
    data = as_json(qj("stats", "--json", url=db.url))
    assert data["waiting"] == {"default": {"paused": {"count": 1, "at_least": False}}}
