"""``orders customer add/list/rotate/revoke`` as real processes, beside a running service on
the same SQLite file: a new key works at once, a rotated or revoked one is refused (401)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from order_service.service import KEY_CACHE_SECONDS

from .procs import BIN, auth, place, running, service_env, wait_until

pytestmark = pytest.mark.acceptance


def orders_cli(database_url: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BIN / "orders"), "customer", *args],
        env=service_env(database_url, None, ORDERS_DEMO="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.strip().splitlines()[-1]


def test_add_list_rotate_revoke(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.sqlite3"
    with running(tmp_path, url) as svc, httpx.Client(base_url=svc.url, timeout=10) as client:
        key = last_line(orders_cli(url, "add", "dave", "--tier", "regular"))
        assert key.startswith("ok_") and len(key) > 30
        order = place(client, key, processing_seconds=0)
        assert (order["customer"], order["tier"]) == ("dave", "regular")

        listed = orders_cli(url, "list").stdout
        assert "dave\tregular\tactive" in listed
        assert key not in listed  # keys are never shown again

        again = orders_cli(url, "add", "dave", "--tier", "vip", ok=False)
        assert again.returncode == 1 and "exists" in again.stderr

        rotated = last_line(orders_cli(url, "rotate", "dave"))
        assert rotated != key
        # A running service caches valid keys for KEY_CACHE_SECONDS: the old key stops then.
        refused = lambda k: client.get("/orders", headers=auth(k)).status_code == 401  # noqa: E731
        assert wait_until(lambda: refused(key), KEY_CACHE_SECONDS + 2)
        mine = client.get("/orders", headers=auth(rotated))
        assert mine.status_code == 200
        assert [o["id"] for o in mine.json()["orders"]] == [order["id"]]

        orders_cli(url, "revoke", "dave")
        assert wait_until(lambda: refused(rotated), KEY_CACHE_SECONDS + 2)
        assert "dave\tregular\trevoked" in orders_cli(url, "list").stdout

        missing = orders_cli(url, "rotate", "nobody", ok=False)
        assert missing.returncode == 1 and "no customer" in missing.stderr
    log = svc.output()
    for secret in (key, rotated):
        assert secret not in log
