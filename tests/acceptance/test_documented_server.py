"""The server command the docs recommend for a Quart app drains its jobs on SIGTERM.

The getting-started page's ``app.py`` and its serve command (the shell block after it) run in
an empty directory, as a reader runs them; the only addition is ``--bind`` to a free port. Two
signups start two jobs; a SIGTERM to the whole process group (what systemd and container
runtimes send) must let them finish or put them back uncharged, never leave them ``running``
until their leases expire."""

from __future__ import annotations

import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .procs import free_port, wait_until

BIN = Path(sys.executable).parent
DOCS = Path(__file__).resolve().parents[2] / "docs"
pytestmark = pytest.mark.acceptance

APP_BLOCK = re.compile(r"^```python\n(# file: app\.py\n.*?)^```", re.MULTILINE | re.DOTALL)
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def documented_app_and_command() -> tuple[str, str]:
    """The getting-started page's ``app.py``, and the command of the first shell block after
    it (the one that serves it)."""
    text = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    app = APP_BLOCK.search(text)
    assert app is not None, "getting-started.md has no `# file: app.py` block"
    serve = SH_BLOCK.search(text, app.end())
    assert serve is not None, "no shell block serves app.py"
    (command,) = serve.group(1).strip().splitlines()
    return app.group(1), command


def test_every_page_recommends_the_same_server_command() -> None:
    _, command = documented_app_and_command()
    for page in ("quart.md", "deployment.md"):
        assert command in (DOCS / page).read_text(encoding="utf-8"), page


def job_rows(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT state, attempts FROM qj_jobs ORDER BY id").fetchall()


def test_sigterm_to_the_process_group_drains_the_running_jobs(tmp_path: Path) -> None:
    app, command = documented_app_and_command()
    (tmp_path / "app.py").write_text(app, encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUART", "PYTEST"))}
    env.pop("PYTHONPATH", None)  # the app comes from the working directory, as for a reader
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    with open(tmp_path / "server.log", "wb") as output:
        server = subprocess.Popen(
            [*shlex.split(command), "--bind", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a service manager starts it
        )
    db = tmp_path / "jobs.sqlite3"
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=5) as client:
            assert wait_until(lambda: _answers(client), timeout=30), "the server did not start"
            for email in ("ada@example.com", "bob@example.com"):
                assert client.post(f"/signup/{email}").status_code == 202
        assert wait_until(
            lambda: [state for state, _ in job_rows(db)] == ["running", "running"], timeout=30
        ), job_rows(db)
        os.killpg(server.pid, signal.SIGTERM)
        code = server.wait(timeout=30)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert code == 0, log
    rows = job_rows(db)
    assert len(rows) == 2
    for state, attempts in rows:
        # Finished in the drain, or put back in the queue without an attempt charged.
        assert (state, attempts) in {("succeeded", 1), ("queued", 0)}, (rows, log)


def _answers(client: httpx.Client) -> bool:
    try:
        client.get("/jobs/1")
    except httpx.TransportError:
        return False
    return True
