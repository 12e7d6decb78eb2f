"""``orders serve`` as a real process: priority, graceful SIGTERM and SIGINT, and ``kill -9``."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .order_checks import sqlite_verdict, sqlite_witness
from .procs import ONE_SLOT, REGULAR_KEY, VIP_KEY, auth, full_only, place, running, wait_until

SHUTDOWN_TIMEOUT = 2

pytestmark = pytest.mark.acceptance


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as s:
        yield s


def ts(value: object) -> float:
    assert isinstance(value, str)
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def fetch(client: httpx.Client, order_id: object, key: str) -> dict[str, object]:
    data: dict[str, object] = client.get(f"/orders/{order_id}", headers=auth(key)).json()
    return data


def all_completed(client: httpx.Client, orders: list[tuple[object, str]]) -> bool:
    return all(fetch(client, oid, key)["status"] == "completed" for oid, key in orders)


def completed_once(db: Path, order_ids: list[object]) -> None:
    """Each order completed with one fulfilment write and one recorded end of its job (the
    witness counts writes; the fulfilment table's key alone cannot show a second one)."""
    result = sqlite_verdict(db, {int(o) for o in order_ids})  # type: ignore[call-overload]
    assert (result.lost, result.doubled, result.disagreeing) == (0, 0, 0), result


def test_vip_orders_start_before_every_queued_regular_order(
    tmp_path: Path, stack: contextlib.ExitStack
) -> None:
    url = f"sqlite:///{tmp_path}/o.sqlite3"
    with running(tmp_path, url, env=ONE_SLOT) as svc:
        client = stack.enter_context(httpx.Client(base_url=svc.url, timeout=10))
        regular = [place(client, REGULAR_KEY, processing_seconds=0.2)["id"] for _ in range(8)]
        time.sleep(0.3)  # the backlog is being worked on
        vip = [place(client, VIP_KEY, processing_seconds=0.05)["id"] for _ in range(4)]
        orders = [(o, REGULAR_KEY) for o in regular] + [(o, VIP_KEY) for o in vip]
        assert wait_until(lambda: all_completed(client, orders), 30)
        reg = [fetch(client, o, REGULAR_KEY) for o in regular]
        vips = [fetch(client, o, VIP_KEY) for o in vip]

    # Every VIP order starts before every regular order still queued when it arrived.
    for v in vips:
        for r in reg:
            if ts(r["started_at"]) > ts(v["created_at"]):
                assert ts(v["started_at"]) < ts(r["started_at"]), (v, r)
    # Within a tier, start order = submission order.
    for tier in (reg, vips):
        starts = [ts(o["started_at"]) for o in tier]
        assert starts == sorted(starts)
    # And the VIP orders really jumped: some regular orders started after them.
    assert any(ts(r["started_at"]) > ts(vips[-1]["started_at"]) for r in reg)


@pytest.mark.parametrize(
    ("server", "sig"),
    [
        pytest.param("uvicorn", signal.SIGINT, id="uvicorn-SIGINT"),
        pytest.param("hypercorn", signal.SIGTERM, id="hypercorn-SIGTERM"),
        full_only("uvicorn", signal.SIGTERM, id="uvicorn-SIGTERM"),
        full_only("hypercorn", signal.SIGINT, id="hypercorn-SIGINT"),
    ],
)
def test_a_signal_drains_in_time_and_the_next_start_resumes(
    tmp_path: Path, stack: contextlib.ExitStack, server: str, sig: signal.Signals
) -> None:
    """SIGTERM (a service manager) or SIGINT (Ctrl-C, sent to the whole process group as a
    terminal does): exit 0 within SHUTDOWN_TIMEOUT + 5 s, running jobs put back uncharged."""
    url = f"sqlite:///{tmp_path}/o.sqlite3"
    env = {"WORKER_CONCURRENCY": "2", "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT), "SERVER": server}
    with running(tmp_path, url, env=env) as svc:
        sqlite_witness(tmp_path / "o.sqlite3")
        client = stack.enter_context(httpx.Client(base_url=svc.url, timeout=10))
        long = [place(client, VIP_KEY, processing_seconds=4)["id"] for _ in range(2)]
        queued = [place(client, REGULAR_KEY, processing_seconds=0)["id"] for _ in range(3)]
        assert wait_until(
            lambda: all(fetch(client, o, VIP_KEY)["status"] == "processing" for o in long), 10
        )
        started = time.monotonic()
        svc.signal(sig, group=sig == signal.SIGINT)
        assert svc.wait(timeout=SHUTDOWN_TIMEOUT + 5) == 0
        assert time.monotonic() - started < SHUTDOWN_TIMEOUT + 5
    # Every web process (one per CPU by default) puts back what its worker held.
    put_back = re.findall(r"putting (\d+) unfinished jobs back", svc.output())
    assert sum(map(int, put_back)) == 2, svc.output()

    with running(tmp_path, url, name="second", env=env) as svc2:
        client = stack.enter_context(httpx.Client(base_url=svc2.url, timeout=10))
        orders = [(o, VIP_KEY) for o in long] + [(o, REGULAR_KEY) for o in queued]
        assert wait_until(lambda: all_completed(client, orders), 30)
        # The interrupted attempt was not charged: one attempt in all.
        assert [fetch(client, o, VIP_KEY)["attempts"] for o in long] == [1, 1]
    completed_once(tmp_path / "o.sqlite3", long + queued)


def test_kill_9_after_a_burst_of_202s_loses_nothing_and_doubles_nothing(
    tmp_path: Path, stack: contextlib.ExitStack
) -> None:
    url = f"sqlite:///{tmp_path}/o.sqlite3"
    env = {"WORKER_CONCURRENCY": "4"}
    with running(tmp_path, url, env=env) as svc:
        sqlite_witness(tmp_path / "o.sqlite3")
        client = stack.enter_context(httpx.Client(base_url=svc.url, timeout=10))
        accepted = [
            (place(client, key, processing_seconds=0.2)["id"], key)
            for key in [VIP_KEY, REGULAR_KEY] * 20
        ]
        svc.kill9()
    with running(tmp_path, url, name="after-kill", env=env) as svc2:
        client = stack.enter_context(httpx.Client(base_url=svc2.url, timeout=10))
        assert wait_until(lambda: all_completed(client, accepted), 60)
    completed_once(tmp_path / "o.sqlite3", [o for o, _ in accepted])


def test_a_bad_setting_stops_start_up_with_exit_code_2(tmp_path: Path) -> None:
    import subprocess

    from .procs import BIN, service_env

    # A missing directory is created; a path under a regular file can never be.
    (tmp_path / "a-file").write_text("not a directory")
    for env, needle in (
        ({"WORKER_CONCURRENCY": "-1"}, "WORKER_CONCURRENCY"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"DATABASE_URL": f"sqlite:///{tmp_path}/a-file/x.sqlite3"}, "DATABASE_URL"),
    ):
        result = subprocess.run(
            [str(BIN / "orders"), "serve"],
            env=service_env(f"sqlite:///{tmp_path}/ok.sqlite3", 1, **env),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and needle in lines[0], result.stderr


def test_quart_jobs_worker_runs_the_order_service_jobs(
    tmp_path: Path, stack: contextlib.ExitStack
) -> None:
    import subprocess

    from .procs import BIN, service_env

    url = f"sqlite:///{tmp_path}/o.sqlite3"
    with running(tmp_path, url, env={"EMBEDDED_WORKERS": "0"}) as web:
        client = stack.enter_context(httpx.Client(base_url=web.url, timeout=10))
        orders = [(place(client, VIP_KEY, processing_seconds=0)["id"], VIP_KEY) for _ in range(3)]
        worker = subprocess.Popen(
            [str(BIN / "quart-jobs"), "--app", "order_service.app:create_app", "worker"],
            env=service_env(url, None),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            assert wait_until(lambda: all_completed(client, orders), 30)
        finally:
            worker.send_signal(signal.SIGTERM)
            output = worker.communicate(timeout=30)[0].decode()
        assert worker.returncode == 0, output
