"""Jobs nobody serves, through real processes: a job of a task that no running ``quart-jobs
worker`` has stays queued, uncharged, and ``quart-jobs stats`` and ``/admin/api/stats`` (of
the small admin app on the same database) say so while a worker without the task runs; once
a worker that has it starts, the job runs and the warning goes away; a worker that stops
leaves the live-workers list, and one killed with SIGKILL drops out of it once its row
expired."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..integration.admin_app import TOKEN
from .procs import BIN, admin_server, auth, wait_until
from .test_fair_claim import APPS, enqueue, job_states, workers

pytestmark = pytest.mark.acceptance

REPORT_LINE = (
    "unserved: 3 ready jobs of task 'b.report' in queue 'reports': "
    "no running worker has that task registered"
)


@contextlib.contextmanager
def worker(tmp_path: Path, app: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """One ``quart-jobs worker`` process; stopped with SIGTERM, it must exit 0."""
    with workers(tmp_path, (app, list(args))) as (proc,):
        yield proc


def stats(url: str, *extra: str) -> str:
    out = subprocess.run(
        [str(BIN / "quart-jobs"), "--database-url", url, "stats", *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def stats_json(url: str) -> dict[str, Any]:
    return dict(json.loads(stats(url, "--json")))


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/jobs.sqlite3"
    for name, source in APPS.items():
        (tmp_path / name).write_text(textwrap.dedent(source.format(url=url)))
    return url


def test_a_task_nobody_serves_is_reported_until_a_worker_that_has_it_runs(
    tmp_path: Path, url: str
) -> None:
    ids = enqueue(
        tmp_path,
        """
        import asyncio, json
        import app_b

        async def main():
            async with app_b.jobs as b:
                print(json.dumps([(await b.enqueue("b.report", i)).id for i in range(3)]))

        asyncio.run(main())
        """,
    )
    with (
        admin_server(tmp_path, url, ADMIN_APP_EMBEDDED_WORKER="0") as svc,
        httpx.Client(base_url=svc.url, timeout=10) as admin,
        worker(tmp_path, "app_a:jobs") as a,
    ):
        # Worker A (a.work only, every queue) is live; nobody has b.report.
        assert wait_until(lambda: len(stats_json(url)["workers"]) == 1, 30)
        data = stats_json(url)
        (live,) = data["workers"]
        assert (live["pid"], live["tasks"], live["queues"]) == (a.pid, ["a.work"], None)
        assert [(u["queue"], u["task"], u["count"]) for u in data["unserved"]] == [
            ("reports", "b.report", 3)
        ]
        text = stats(url)
        assert REPORT_LINE in text.splitlines(), text
        assert "live workers: 1" in text
        body = admin.get("/admin/api/stats", headers=auth(TOKEN)).json()
        assert [w["pid"] for w in body["workers"]] == [a.pid]
        assert [u["message"] for u in body["unserved"]] == [REPORT_LINE.removeprefix("unserved: ")]
        # Queued, no attempt charged.
        assert [(s, n) for s, n, _ in job_states(url, ids)] == [("queued", 0)] * 3

        # A worker that has the task: the jobs run, the warning goes away.
        with worker(tmp_path, "app_b:jobs", "--queues", "reports") as b:
            assert wait_until(lambda: all(s == "succeeded" for s, _, _ in job_states(url, ids)), 30)
            data = stats_json(url)
            assert data["unserved"] == []
            assert sorted(w["pid"] for w in data["workers"]) == sorted([a.pid, b.pid])
            assert "unserved:" not in stats(url)
            body = admin.get("/admin/api/stats", headers=auth(TOKEN)).json()
            assert body["unserved"] == [] and len(body["workers"]) == 2
        # Worker B stopped: it left the registry at once.
        assert [w["pid"] for w in stats_json(url)["workers"]] == [a.pid]
    assert [(s, n) for s, n, _ in job_states(url, ids)] == [("succeeded", 1)] * 3
    assert stats_json(url)["workers"] == []


SHORT_LEASE_APP = """
from quart_jobs import Jobs, WorkerSettings

jobs = Jobs("{url}", worker_settings=WorkerSettings(lease_seconds=1))


@jobs.task(name="b.report", queue="reports")
def report(n):
    return n
"""


def test_a_worker_killed_without_stopping_counts_as_gone_after_its_expiry(
    tmp_path: Path, url: str
) -> None:
    (tmp_path / "app_short.py").write_text(SHORT_LEASE_APP.format(url=url))
    subprocess.run([str(BIN / "quart-jobs"), "--database-url", url, "migrate"], check=True)
    proc = subprocess.Popen(
        [str(BIN / "quart-jobs"), "--app", "app_short:jobs", "worker"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: [w["pid"] for w in stats_json(url)["workers"]] == [proc.pid], 30)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # no graceful stop: its row stays behind
        proc.wait(10)
    # Gone from the live workers once three lease intervals (3 s here) passed without a
    # refresh, though nothing removed its row: it expired.
    assert wait_until(lambda: stats_json(url)["workers"] == [], 30)
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as conn:
        assert conn.execute("SELECT pid FROM qj_workers").fetchall() == [(proc.pid,)]
