"""``orders serve`` with ``WEB_PROCESSES=2``: one port, one supervisor, and the promises of a
single process kept for the whole group (real processes, real signals)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from quart_jobs.backends.sqlite.wakeup import wakeup_directory

from .order_checks import pg_verdict, pg_witness, sqlite_verdict, sqlite_witness
from .procs import (
    BIN,
    REGULAR_KEY,
    VIP_KEY,
    Service,
    free_port,
    place,
    queued_orders,
    running,
    serve_once,
    service_env,
    taken_port,
    wait_until,
)

SHUTDOWN_TIMEOUT = 2
GROUP = {"WEB_PROCESSES": "2", "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)}

pytestmark = pytest.mark.acceptance


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as s:
        yield s


def web_processes(svc: Service) -> list[int]:
    """The supervisor's web processes (its children but multiprocessing's resource tracker)."""
    assert svc.proc is not None
    pid = svc.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(c)
        for c in children
        if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()
    ]


Rows = Callable[[str], list[tuple[object, ...]]]


def sqlite_rows(db: Path) -> Rows:
    def rows(sql: str) -> list[tuple[object, ...]]:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
            return conn.execute(sql).fetchall()

    return rows


def pg_rows(url: str) -> Rows:
    def rows(sql: str) -> list[tuple[object, ...]]:
        with psycopg.connect(url, connect_timeout=5) as conn:
            return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]

    return rows


def running_workers(rows: Rows) -> set[str]:
    return {str(w) for (w,) in rows("SELECT worker FROM qj_jobs WHERE state = 'running'")}


def statuses(client: httpx.Client, orders: list[tuple[object, str]]) -> list[object]:
    """The orders' statuses; ``["unreachable"]`` when the connection broke: a kept-alive
    connection to a web process that was killed is reset once, and the next request opens a
    new one (to a live process)."""
    try:
        return [
            client.get(f"/orders/{oid}", headers={"Authorization": f"Bearer {key}"}).json()[
                "status"
            ]
            for oid, key in orders
        ]
    except httpx.TransportError:
        return ["unreachable"]


def test_the_port_listens_before_any_web_process_claims_a_job(tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite3"
    url = f"sqlite:///{db}"
    with (
        running(tmp_path, url, env={"EMBEDDED_WORKERS": "0"}) as web,
        httpx.Client(base_url=web.url) as client,
    ):
        for _ in range(20):
            place(client, VIP_KEY, processing_seconds=1)
    port = free_port()
    svc = Service(
        args=["serve"],
        env=service_env(url, port, **GROUP),
        log_path=tmp_path / "group.log",
        port=port,
        program=[str(BIN / "orders")],
    ).start()
    rows = sqlite_rows(db)
    try:
        # The moment a job is seen claimed, the port must already accept connections: the
        # supervisor listens before it starts the processes that claim.
        assert wait_until(lambda: rows("SELECT 1 FROM qj_jobs WHERE attempts > 0"), 60, 0.01)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        svc.stop()
    assert svc.proc is not None and svc.proc.returncode == 0, svc.output()


def test_a_taken_port_stops_the_group_before_any_process_starts(tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite3"
    url = f"sqlite:///{db}"
    queued_orders(tmp_path, url, 3)
    with taken_port() as port:
        result = serve_once(url, port, **GROUP)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], result.stderr
    assert (
        sqlite_rows(db)("SELECT state, attempts, worker FROM qj_jobs") == [("queued", 0, None)] * 3
    )


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"WEB_PROCESSES": "0"}, "WEB_PROCESSES='0'"),
        ({"WEB_PROCESSES": "two"}, "WEB_PROCESSES='two'"),
        ({"WEB_PROCESSES": "2", "DATABASE_URL": "memory://"}, "WEB_PROCESSES=2"),
        (
            {"WEB_PROCESSES": "2", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
            "DATABASE_URL",
        ),
    ],
)
def test_a_bad_start_of_the_group_is_one_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    result = subprocess.run(
        [str(BIN / "orders"), "serve"],
        env=service_env(f"sqlite:///{tmp_path}/o.sqlite3", free_port(), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr


@pytest.mark.parametrize(
    ("sig", "group", "database_kind"),
    [
        pytest.param(signal.SIGTERM, False, "sqlite", id="SIGTERM-to-the-supervisor-sqlite"),
        pytest.param(signal.SIGINT, True, "sqlite", id="SIGINT-to-the-group-sqlite"),
        pytest.param(signal.SIGTERM, False, "postgresql", id="SIGTERM-to-the-supervisor-pg"),
    ],
)
def test_a_signal_drains_every_web_process_and_the_group_exits_0(
    tmp_path: Path,
    stack: contextlib.ExitStack,
    request: pytest.FixtureRequest,
    sig: signal.Signals,
    group: bool,
    database_kind: str,
) -> None:
    """Each web process holds running jobs when the signal comes; within SHUTDOWN_TIMEOUT + 5 s
    the group exits 0 and every job is back in the queue with no attempt charged."""
    if database_kind == "sqlite":
        db = tmp_path / "o.sqlite3"
        url = f"sqlite:///{db}"
        rows = sqlite_rows(db)
    else:
        url = request.getfixturevalue("database")
        rows = pg_rows(url)
    env = {**GROUP, "WORKER_CONCURRENCY": "2"}
    with running(tmp_path, url, env=env) as svc:
        client = stack.enter_context(httpx.Client(base_url=svc.url, timeout=10))
        long = [place(client, VIP_KEY, processing_seconds=30)["id"] for _ in range(4)]
        # Both web processes run two each (WORKER_CONCURRENCY=2 apiece).
        assert wait_until(
            lambda: (
                len(rows("SELECT 1 FROM qj_jobs WHERE state = 'running'")) == 4
                and len(running_workers(rows)) == 2
            ),
            30,
        ), svc.output()
        svc.signal(sig, group=group)
        assert svc.wait(timeout=SHUTDOWN_TIMEOUT + 5) == 0, svc.output()
    log = svc.output()
    assert log.count("putting 2 unfinished jobs back") == 2, log
    assert "order service stopped" in log
    assert "Traceback" not in log
    back = rows("SELECT state, attempts FROM qj_jobs ORDER BY id")
    assert back == [("queued", 0)] * len(long), back


def test_a_killed_web_process_is_replaced_and_every_accepted_order_completes(
    tmp_path: Path, stack: contextlib.ExitStack
) -> None:
    db = tmp_path / "o.sqlite3"
    url = f"sqlite:///{db}"
    rows = sqlite_rows(db)
    with running(tmp_path, url, env={**GROUP, "WORKER_CONCURRENCY": "2"}) as svc:
        sqlite_witness(db)
        client = stack.enter_context(httpx.Client(base_url=svc.url, timeout=10))
        # Wake-ups between the web processes: each one's worker listens beside the database.
        assert wait_until(
            lambda: len({p.name.split("-")[1] for p in wakeup_directory(db).glob("r-*")}) == 2,
            30,
        )
        accepted = [
            (place(client, key, processing_seconds=0.5)["id"], key)
            for key in [VIP_KEY, REGULAR_KEY] * 10
        ]
        before = web_processes(svc)
        assert len(before) == 2
        # The victim holds jobs: they come back when their leases expire.
        assert wait_until(
            lambda: any(f":{before[0]}:" in w for w in running_workers(rows)), 30, 0.02
        )
        os.kill(before[0], signal.SIGKILL)
        assert wait_until(
            lambda: len(web_processes(svc)) == 2 and before[0] not in web_processes(svc), 30
        ), svc.output()
        assert wait_until(lambda: set(statuses(client, accepted)) == {"completed"}, 60)
        replacement = (set(web_processes(svc)) - set(before)).pop()
        assert wait_until(lambda: f":{replacement}:" in svc.output(), 30)  # its worker started
        svc.signal(signal.SIGTERM)
        assert svc.wait(timeout=SHUTDOWN_TIMEOUT + 5) == 0, svc.output()
    assert f"web process {before[0]} stopped (killed by SIGKILL)" in svc.output()
    result = sqlite_verdict(db, {int(o) for o, _ in accepted})  # type: ignore[call-overload]
    assert (result.lost, result.doubled, result.disagreeing) == (0, 0, 0), result


def test_a_killed_web_process_on_postgresql_is_replaced(
    tmp_path: Path, stack: contextlib.ExitStack, database: str
) -> None:
    rows = pg_rows(database)
    with running(tmp_path, database, env={**GROUP, "WORKER_CONCURRENCY": "2"}) as svc:
        pg_witness(database)
        client = stack.enter_context(httpx.Client(base_url=svc.url, timeout=10))
        accepted = [
            (place(client, key, processing_seconds=0.5)["id"], key)
            for key in [VIP_KEY, REGULAR_KEY] * 6
        ]
        before = web_processes(svc)
        assert wait_until(
            lambda: any(f":{before[0]}:" in w for w in running_workers(rows)), 30, 0.02
        )
        os.kill(before[0], signal.SIGKILL)
        assert wait_until(lambda: set(statuses(client, accepted)) == {"completed"}, 60)
        assert len(web_processes(svc)) == 2
        svc.signal(signal.SIGTERM)
        assert svc.wait(timeout=SHUTDOWN_TIMEOUT + 5) == 0, svc.output()
    result = pg_verdict(database, {int(o) for o, _ in accepted})  # type: ignore[call-overload]
    assert (result.lost, result.doubled, result.disagreeing) == (0, 0, 0), result


def test_a_killed_supervisor_takes_its_web_processes_with_it(tmp_path: Path) -> None:
    """``kill -9`` of the supervisor: no web process goes on serving on the port (the service
    started again can bind it)."""
    url = f"sqlite:///{tmp_path / 'o.sqlite3'}"
    with running(tmp_path, url, env=GROUP) as svc:
        children = web_processes(svc)
        assert len(children) == 2
        assert svc.proc is not None
        os.kill(svc.proc.pid, signal.SIGKILL)
        svc.proc.wait(timeout=10)
        assert wait_until(lambda: not any(map(_alive, children)), 10), svc.output()
        # Free once the kernel has closed their sockets (a moment after they died).
        assert wait_until(lambda: _bindable(svc.port), 10), svc.output()


def _bindable(port: int | None) -> bool:
    """Whether a server could listen on ``port`` now (past the readiness check's connections
    in TIME_WAIT, as a server binds): false only while a socket still listens there."""
    assert port is not None
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            again.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _succeeded(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("quart_jobs_succeeded_total{")
    )


def test_metrics_count_what_every_web_process_did(
    tmp_path: Path, stack: contextlib.ExitStack
) -> None:
    """Whichever web process answers ``GET /metrics``, its counters are the group's."""
    url = f"sqlite:///{tmp_path / 'o.sqlite3'}"
    with running(tmp_path, url, env={**GROUP, "WORKER_CONCURRENCY": "1"}) as svc:
        client = stack.enter_context(httpx.Client(base_url=svc.url, timeout=10))
        orders = [(place(client, key)["id"], key) for key in [VIP_KEY, REGULAR_KEY] * 10]
        assert wait_until(lambda: set(statuses(client, orders)) == {"completed"}, 60)
        rows = sqlite_rows(tmp_path / "o.sqlite3")
        assert len({w for (w,) in rows("SELECT worker FROM qj_jobs")}) == 2  # both ran jobs
        scrapes = []
        for _ in range(8):  # a new connection each time: either process may answer
            with httpx.Client(base_url=svc.url, timeout=10) as fresh:
                scrapes.append(_succeeded(fresh.get("/metrics").text))
        assert scrapes == [20.0] * 8, scrapes


def _statuses_on_fresh_connections(url: str, n: int, path: str, token: str) -> list[int]:
    """``n`` GETs of ``path``, each on a new connection (either web process may answer)."""
    codes = []
    for _ in range(n):
        with httpx.Client(base_url=url, timeout=10) as fresh:
            codes.append(fresh.get(path, headers={"Authorization": f"Bearer {token}"}).status_code)
    return codes


def test_a_customers_request_limit_holds_for_the_group(tmp_path: Path) -> None:
    """``RATE_LIMIT_PER_CUSTOMER`` counts the customer's requests in every web process: a
    bucket of one request, refilled in 10 s, lets one request through, not one per process."""
    url = f"sqlite:///{tmp_path / 'o.sqlite3'}"
    env = {**GROUP, "RATE_LIMIT_PER_CUSTOMER": "0.1", "EMBEDDED_WORKERS": "0"}
    with running(tmp_path, url, env=env) as svc:
        codes = _statuses_on_fresh_connections(svc.url, 40, "/orders/1", REGULAR_KEY)
    assert sorted(set(codes)) == [404, 429], codes
    assert codes.count(404) == 1, codes


def test_failed_admin_logins_are_throttled_for_the_group(tmp_path: Path) -> None:
    """SPEC: at most 10 failed logins a minute per client, whichever web process they reach."""
    url = f"sqlite:///{tmp_path / 'o.sqlite3'}"
    with running(tmp_path, url, env={**GROUP, "EMBEDDED_WORKERS": "0"}) as svc:
        codes = _statuses_on_fresh_connections(svc.url, 40, "/admin/api/stats", "w" * 32)
    assert codes.count(401) == 10 and codes.count(429) == 30, codes
