"""``orders serve`` start-up: every failure is one line naming its cause, exit 2, and no job
is claimed before the server listens."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from quart_jobs.backends.sqlite.wakeup import wakeup_directory

from .procs import (
    VIP_KEY,
    free_port,
    place,
    queued_orders,
    running,
    serve_once,
    taken_port,
)

pytestmark = pytest.mark.acceptance


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_taken_port_stops_start_up_before_any_job_is_claimed(tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite3"
    url = f"sqlite:///{db}"
    queued_orders(tmp_path, url, 5)
    with taken_port() as port:
        result = serve_once(url, port, EMBEDDED_WORKERS="1")
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert f"127.0.0.1:{port}" in line and "PORT" in line and "DATABASE_URL" not in line
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT state, attempts, worker FROM qj_jobs").fetchall()
    assert rows == [("queued", 0, None)] * 5


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"ADMIN_TOKEN": "short"}, "ADMIN_TOKEN"),
        ({"HOST": "256.1.1.1"}, "HOST"),
        ({"METRICS_TOKEN": "x"}, "METRICS_TOKEN"),
        ({"TRUSTED_PROXIES": "not-an-address"}, "TRUSTED_PROXIES"),
        ({"SERVER": "granian"}, "SERVER"),
    ],
)
def test_a_bad_operator_setting_is_one_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    result = serve_once(f"sqlite:///{tmp_path}/o.sqlite3", free_port(), **env)
    assert result.returncode == 2, result.stderr
    assert needle in one_line(result)


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({"ORDERS_DEMO": "0", "ADMIN_TOKEN": "operator-secret-token-1"}, False),
        ({"ORDERS_DEMO": "1", "ADMIN_TOKEN": "operator-secret-token-1"}, False),
        ({"ORDERS_DEMO": "1"}, True),
    ],
)
def test_the_admin_token_is_printed_only_when_it_is_the_demo_token(
    tmp_path: Path, env: dict[str, str], shown: bool
) -> None:
    with running(tmp_path, f"sqlite:///{tmp_path}/o.sqlite3", env=env) as svc:
        token = env.get("ADMIN_TOKEN", "demo-admin-token")
        admin = httpx.get(
            f"{svc.url}/admin/api/stats", headers={"Authorization": f"Bearer {token}"}
        )
        assert admin.status_code == 200  # the admin is on either way
    output = svc.output()
    assert "operator-secret-token-1" not in output
    assert ("admin token: demo-admin-token" in output) is shown
    if not shown:
        assert "admin: enabled with ADMIN_TOKEN" in output


NUMERIC_SETTINGS = [
    "PORT",
    "WORKER_CONCURRENCY",
    "WEB_PROCESSES",
    "SHUTDOWN_TIMEOUT",
    "JOB_MAX_ATTEMPTS",
    "MAX_BODY_BYTES",
    "MAX_QUEUED",
    "MAX_QUEUED_PER_CUSTOMER",
    "RATE_LIMIT_PER_CUSTOMER",
    "LEASE_SECONDS",
    "POLL_INTERVAL",
    "JOB_RETENTION",
]


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name in NUMERIC_SETTINGS for value in ("nan", "inf", "1e400")]
    + [("VIP_WEIGHT", "nan"), ("VIP_WEIGHT", "-inf")],
)
def test_a_number_that_is_not_finite_is_refused_naming_its_setting(
    tmp_path: Path, name: str, value: str
) -> None:
    result = serve_once(f"sqlite:///{tmp_path}/o.sqlite3", free_port(), **{name: value})
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert line.startswith("orders: ") and f": {name}=" in line, line
    assert "DATABASE_URL" not in line


def test_vip_weight_inf_means_vip_strictly_first_and_starts(tmp_path: Path) -> None:
    with running(tmp_path, f"sqlite:///{tmp_path}/o.sqlite3", env={"VIP_WEIGHT": "inf"}) as svc:
        assert httpx.get(f"{svc.url}/readyz").status_code == 200


def modes(db: Path) -> dict[str, str]:
    files = {p.name: p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()}
    # Beside the database, or in the temporary directory when that path would be too long.
    files["wakeup"] = wakeup_directory(db)
    return {name: oct(stat.S_IMODE(p.stat().st_mode)) for name, p in files.items()}


def test_the_database_and_its_wal_and_shm_files_are_private_to_their_owner(
    tmp_path: Path,
) -> None:
    db = tmp_path / "var" / "o.sqlite3"
    old = os.umask(0o022)  # the usual umask, which would leave them readable by everyone
    try:
        with (
            running(tmp_path, f"sqlite:///{db}") as svc,
            httpx.Client(base_url=svc.url) as client,
        ):
            place(client, VIP_KEY, processing_seconds=0)
            seen = modes(db)
    finally:
        os.umask(old)
    assert seen == {
        "o.sqlite3": "0o600",
        "o.sqlite3-wal": "0o600",
        "o.sqlite3-shm": "0o600",
        "wakeup": "0o700",
    }


def test_an_existing_database_keeps_the_mode_its_operator_gave_it(tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite3"
    sqlite3.connect(db).close()  # an empty file, as an operator might prepare it
    db.chmod(0o640)
    with running(tmp_path, f"sqlite:///{db}") as svc, httpx.Client(base_url=svc.url) as client:
        place(client, VIP_KEY, processing_seconds=0)
        seen = modes(db)
    assert seen["o.sqlite3"] == "0o640"


def test_a_malformed_fulfilment_rate_limit_stops_start_up_naming_it(tmp_path: Path) -> None:
    result = serve_once(
        f"sqlite:///{tmp_path}/o.sqlite3", free_port(), FULFILMENT_RATE_LIMIT="5 per second"
    )
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert line.startswith("orders: ") and ": FULFILMENT_RATE_LIMIT='5 per second': " in line
