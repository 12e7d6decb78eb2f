"""``quart run`` of an app that uses the extension: the embedded worker's lines reach stderr
with no logging set up, and exactly once when the app configured logging itself."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from .procs import BIN, free_port, wait_until

APP = """
import logging

from quart import Quart

from quart_jobs import QuartJobs

if {configure!r}:
    logging.basicConfig(level=logging.INFO, format="app-handler %(name)s: %(message)s")

app = Quart(__name__)
app.config["QUART_JOBS_DATABASE_URL"] = "sqlite:///jobs.sqlite3"
jobs = QuartJobs(app)


@jobs.task
async def noop() -> None:
    pass
"""


@pytest.mark.parametrize("configure", [False, True], ids=["no-logging", "app-logging"])
def test_quart_run_shows_the_embedded_workers_lines_once(tmp_path: Path, configure: bool) -> None:
    (tmp_path / "served.py").write_text(APP.format(configure=configure))
    out = tmp_path / "out.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUART_", "DATABASE_URL"))}
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [str(BIN / "quart"), "--app", "served:app", "run", "--port", str(free_port())],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            assert wait_until(lambda: " started (concurrency " in out.read_text(), timeout=30), (
                out.read_text()
            )
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    lines = out.read_text().splitlines()
    started = [line for line in lines if "quart_jobs.worker: worker" in line and "started" in line]
    stopped = [line for line in lines if "quart_jobs.worker: worker" in line and "stopped" in line]
    assert (len(started), len(stopped)) == (1, 1), lines
    if configure:  # the app's own handler wrote them, the library's stayed quiet
        assert started[0].startswith("app-handler quart_jobs.worker: worker ")
    else:
        assert " INFO quart_jobs.worker: worker " in started[0]
