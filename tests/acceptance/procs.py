"""Real processes for acceptance tests: a command (``quart-jobs`` by default) on a free port,
with helpers to wait for readiness, send signals and read their output."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ..conftest import IN_CI

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
#: The full fault and signal set runs under ``CI=true`` (``.ci/run``) or ``FULL_FAULTS=1``;
#: ``make test`` runs a short one that still makes every check.
FULL = IN_CI or bool(os.environ.get("FULL_FAULTS"))


def full_only(*values: object, id: str) -> object:
    """A parameter set that runs only in the full set (skipped, with the reason, otherwise):
    for variants that repeat a check another variant of the short set already makes."""
    reason = "in the full set only (CI=true or FULL_FAULTS=1)"
    return pytest.param(
        *values, id=id, marks=[pytest.mark.slow, pytest.mark.skipif(not FULL, reason=reason)]
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Service:
    """One process; output goes to a log file that tests can read."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    #: The command line before ``args`` (default: the ``quart-jobs`` command).
    program: list[str] = field(default_factory=lambda: [str(BIN / "quart-jobs")])
    #: The path that answers 200 once the process serves.
    ready_path: str = "/readyz"
    _log: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            [*self.program, *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 30.0) -> Service:
        assert self.port is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}{self.ready_path}", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"service not ready after {timeout}s:\n{self.output()}")

    def signal(self, sig: int, *, group: bool = False) -> None:
        """Send ``sig`` to the process, or to its whole process group (as a terminal's Ctrl-C
        or a service manager does) with ``group``."""
        assert self.proc is not None
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a test may have stopped it
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def process_env(database_url: str, port: int | None, **extra: str) -> dict[str, str]:
    """This process's environment without ``ORDERS_*`` and ``QUART_*`` settings, with the
    database, short leases (a killed process's jobs come back within a test's patience) and
    quick polling."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "QUART_"))}
    env.update(
        {
            "DATABASE_URL": database_url,
            "HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            "LEASE_SECONDS": "3",
            "POLL_INTERVAL": "0.2",
        }
    )
    if port is not None:
        env["PORT"] = str(port)
    env.update(extra)
    return env


@contextmanager
def admin_server(tmp_path: Path, database_url: str, **env: str) -> Iterator[Service]:
    """The small app with the admin and an embedded worker (``tests.integration.admin_app``)
    served by Hypercorn on a free port, ready; stopped after."""
    port = free_port()
    svc = Service(
        args=["--bind", f"127.0.0.1:{port}", "tests.integration.admin_app:serve()"],
        env=process_env(
            database_url, port, ADMIN_APP_DATABASE_URL=database_url, PYTHONPATH=str(ROOT), **env
        ),
        log_path=tmp_path / "admin.log",
        port=port,
        program=[str(BIN / "hypercorn")],
        ready_path="/metrics",
    ).start()
    try:
        yield svc.wait_ready()
    finally:
        svc.stop()


def wait_until(predicate: object, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False


def freeze_holding(victim: Service, held: Callable[[int], set[int]]) -> set[int]:
    """Stop ``victim`` (SIGSTOP) at a moment it holds jobs; the ids of those jobs (read while
    it cannot change them). ``held(pid)`` reads the running jobs of a process."""
    assert victim.proc is not None
    pid = victim.proc.pid
    for _ in range(200):
        victim.signal(signal.SIGSTOP)
        jobs = held(pid)
        if jobs:
            return jobs
        victim.signal(signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError(f"worker {pid} never held a job")
