"""An order's life through the real ``orders serve`` process: placed, completed or cancelled,
then every finished job purged by hand (``quart-jobs purge``) and by ``JOB_RETENTION``: every
order stays readable with its items and status, the listing is unchanged, an old
``Idempotency-Key`` still answers its order, and the admin cannot retry a cancelled order."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from .procs import ADMIN_TOKEN, BIN, REGULAR_KEY, VIP_KEY, auth, running, service_env, wait_until

pytestmark = pytest.mark.acceptance

ORDER = {"items": [{"sku": "L-1", "quantity": 3}], "processing_seconds": 0}


def jobs_in(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM qj_jobs").fetchone()[0])


def status(http: httpx.Client, order_id: int, key: str = VIP_KEY) -> Any:
    return http.get(f"/orders/{order_id}", headers=auth(key)).json()["status"]


def test_orders_outlive_their_jobs_purged_by_hand_and_by_retention(tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite3"
    url = f"sqlite:///{db}"
    keyed = {**auth(VIP_KEY), "Idempotency-Key": "order-2026-12-01"}
    with (
        running(tmp_path, url, env={"JOB_RETENTION": "off", "WEB_PROCESSES": "1"}) as svc,
        httpx.Client(base_url=svc.url, timeout=10) as http,
    ):
        first = http.post("/orders", json=ORDER, headers=keyed).json()
        done = [http.post("/orders", json=ORDER, headers=auth(VIP_KEY)).json() for _ in range(3)]
        slow = {**ORDER, "processing_seconds": 30}
        busy = [  # keep the regular customer's worker slots busy, so the next one waits
            http.post("/orders", json=slow, headers=auth(REGULAR_KEY)).json() for _ in range(4)
        ]
        waiting = http.post("/orders", json=slow, headers=auth(REGULAR_KEY)).json()
        cancelled = http.post(f"/orders/{waiting['id']}/cancel", headers=auth(REGULAR_KEY))
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        for order in (first, *done):
            assert wait_until(lambda o=order: status(http, o["id"]) == "completed", 30)
        busy_order = http.post(f"/orders/{busy[0]['id']}/cancel", headers=auth(REGULAR_KEY))
        assert busy_order.status_code == 409  # processing: too late to cancel
        vip_list = http.get("/orders", headers=auth(VIP_KEY)).json()
        regular_list = http.get("/orders?status=cancelled", headers=auth(REGULAR_KEY)).json()
        assert [o["id"] for o in regular_list["orders"]] == [waiting["id"]]

        # The admin's retry of the cancelled order's job is refused: cancellation is final.
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        jobs = http.get("/admin/api/jobs?state=cancelled", headers=admin).json()["jobs"]
        (job,) = jobs
        retry = http.post(f"/admin/api/jobs/{job['id']}/retry", headers=admin)
        assert retry.status_code == 409 and retry.json()["error"]["code"] == "retry_refused"

        purge = subprocess.run(
            [str(BIN / "quart-jobs"), "--database-url", url, "purge", "--older-than", "0s"],
            capture_output=True,
            text=True,
            timeout=60,
            env=service_env(url, None),
            check=False,
        )
        assert purge.returncode == 0, purge.stderr
        assert "removed 5 jobs" in purge.stdout  # 4 succeeded, 1 cancelled
        assert http.get("/orders", headers=auth(VIP_KEY)).json() == vip_list
        assert (
            http.get("/orders?status=cancelled", headers=auth(REGULAR_KEY)).json() == regular_list
        )
        read = http.get(f"/orders/{first['id']}", headers=auth(VIP_KEY)).json()
        assert read["status"] == "completed" and read["items"] == ORDER["items"]
        replay = http.post("/orders", json=ORDER, headers=keyed)
        assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["id"] == first["id"]
        reused = http.post("/orders", json={**ORDER, "fail_times": 1}, headers=keyed)
        assert reused.status_code == 422
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        assert http.delete(f"/orders/{first['id']}", headers=auth(VIP_KEY)).status_code == 405

    # Restarted with a one-second retention: the running service deletes the rest itself.
    with (
        running(tmp_path, url, env={"JOB_RETENTION": "1s"}, name="retention") as svc,
        httpx.Client(base_url=svc.url, timeout=10) as http,
    ):
        for order in busy:
            assert wait_until(lambda o=order: status(http, o["id"], REGULAR_KEY) == "completed", 90)
        assert wait_until(lambda: jobs_in(db) == 0, 30), "retention left finished jobs"
        assert http.get("/orders", headers=auth(VIP_KEY)).json() == vip_list
        listed = http.get("/orders", headers=auth(REGULAR_KEY)).json()["orders"]
        assert sorted(o["status"] for o in listed) == ["cancelled"] + ["completed"] * 4
    with sqlite3.connect(db, timeout=30) as conn:
        fulfilled = dict(
            conn.execute(
                "SELECT order_id, COUNT(*) FROM orders_fulfilments GROUP BY order_id"
            ).fetchall()
        )
    assert set(fulfilled) == {o["id"] for o in (first, *done, *busy)}
    assert set(fulfilled.values()) == {1}
    print(
        f"\nlifecycle: orders={len(fulfilled) + 1} purged by hand, then by retention: "
        f"{json.dumps({'vip': len(vip_list['orders']), 'regular': len(listed)})}"
    )
