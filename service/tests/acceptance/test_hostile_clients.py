"""200 concurrent hostile clients against a real ``orders serve``: valid orders, malformed
requests, wrong keys, replayed ``Idempotency-Key``s and oversized bodies, all at once.

Every valid order is accepted exactly once (a replay gets the same id) and completed; every
bad request gets a 4xx; no 5xx; the service's memory stays bounded.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from .procs import ADMIN_TOKEN, REGULAR_KEY, VIP_KEY, auth, running

pytestmark = pytest.mark.acceptance

CLIENTS = 200
REQUESTS = 2000
MAX_BODY = 256 * 1024
RSS_LIMIT_MB = 300
KEYS = (VIP_KEY, REGULAR_KEY)
JSON_CT = {"Content-Type": "application/json"}
ORDER = {"items": [{"sku": "H-1", "quantity": 1}], "processing_seconds": 0}

MALFORMED: list[tuple[bytes, dict[str, str]]] = [
    (b'{"items": [', JSON_CT),
    (b"", JSON_CT),
    (b'{"items": "\xff\xfe"}', JSON_CT),
    (b"[" * 5000 + b"]" * 5000, JSON_CT),
    (b'{"items": [{"sku": "A", "quantity": 1e400}]}', JSON_CT),
    (b'{"items": [{"sku": "A", "quantity": 1}], "processing_seconds": NaN}', JSON_CT),
    (b'{"items": [{"sku": "A", "quantity": 1}], "tier": "vip"}', JSON_CT),
    (b'{"items": [{"sku": "A", "quantity": 1}], "items": []}', JSON_CT),
    (json.dumps(ORDER).encode(), {"Content-Type": "text/plain"}),
]


@dataclass
class Tally:
    by_kind: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)  # idempotency key -> order id
    peak_rss_kb: int = 0


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def plan(rng: random.Random) -> list[tuple[str, str]]:
    """``(kind, idempotency key)`` for every request; replays reuse earlier keys."""
    cases: list[tuple[str, str]] = []
    keys: list[str] = []
    for i in range(REQUESTS):
        roll = rng.random()
        if roll < 0.40 or not keys:
            keys.append(f"hostile-{i}")
            cases.append(("valid", keys[-1]))
        elif roll < 0.55:
            cases.append(("replay", rng.choice(keys)))
        elif roll < 0.75:
            cases.append(("malformed", ""))
        elif roll < 0.92:
            cases.append(("wrong_key", ""))
        elif roll < 0.96:
            cases.append(("oversized", ""))
        else:
            cases.append(("others_order", ""))
    return cases


async def one(client: httpx.AsyncClient, kind: str, key: str, rng: random.Random, t: Tally) -> None:
    customer = KEYS[hash(key) % 2] if key else rng.choice(KEYS)
    headers = auth(customer)
    if kind in ("valid", "replay"):
        response = await client.post(
            "/orders", json=ORDER, headers={**headers, "Idempotency-Key": key}
        )
    elif kind == "malformed":
        body, extra = rng.choice(MALFORMED)
        response = await client.post("/orders", content=body, headers={**headers, **extra})
    elif kind == "wrong_key":
        bad = rng.choice(["Bearer nope", "demo-vip-key", "Bearer demo-vip-kez", "Basic eDp5"])
        response = await client.post(
            "/orders", json=ORDER, headers={**JSON_CT, "Authorization": bad}
        )
    elif kind == "oversized":
        body = b'{"items": [], "pad": "' + b"x" * (MAX_BODY + 1024) + b'"}'
        response = await client.post("/orders", content=body, headers={**headers, **JSON_CT})
    else:  # an id that is someone else's, one's own, or nobody's
        response = await client.get(f"/orders/{rng.randint(1, 1000)}", headers=headers)
    t.by_kind[kind] += 1
    status = response.status_code
    code = ""
    if status >= 400:
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            t.wrong.append(f"{kind}: {status} without the JSON error body")
    t.statuses[f"{status} {code}".strip()] += 1
    if status >= 500:
        t.server_errors.append(f"{kind}: {status} {response.text[:200]}")
    elif kind in ("valid", "replay"):
        if status != 202:
            t.wrong.append(f"{kind}: {status} {response.text[:200]}")
            return
        order_id = int(response.json()["id"])
        if t.ids.setdefault(key, order_id) != order_id:
            t.wrong.append(f"key {key}: ids {t.ids[key]} and {order_id}")
    elif kind == "others_order":
        if status not in (200, 404):
            t.wrong.append(f"{kind}: {status}")
    elif not 400 <= status < 500:
        t.wrong.append(f"{kind}: {status}, expected a 4xx")


async def storm(url: str, pid: int, tally: Tally) -> None:
    rng = random.Random(7)
    cases = plan(rng)
    work: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for case in cases:
        work.put_nowait(case)
    limits = httpx.Limits(max_connections=CLIENTS)

    async def client_loop(seed: int) -> None:
        own = random.Random(seed)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            while not work.empty():
                kind, key = work.get_nowait()
                try:
                    await one(client, kind, key, own, tally)
                except httpx.TransportError as exc:
                    tally.wrong.append(f"{kind}: transport error {exc!r}")

    async def watch_memory() -> None:
        while True:
            tally.peak_rss_kb = max(tally.peak_rss_kb, rss_kb(pid))
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch_memory())
    try:
        await asyncio.gather(*(client_loop(i) for i in range(CLIENTS)))
    finally:
        watcher.cancel()


def jobs_by_key(db: Path) -> tuple[dict[str, int], dict[str, int], int]:
    """Orders per idempotency key, their jobs' states, and how many fulfilments were written."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT idempotency_key, COUNT(*) FROM orders GROUP BY idempotency_key"
        ).fetchall()
        per_key = {str(key): n for key, n in rows}
        states = dict(conn.execute("SELECT state, COUNT(*) FROM qj_jobs GROUP BY state").fetchall())
        fulfilled = conn.execute("SELECT COUNT(*) FROM orders_fulfilments").fetchone()[0]
    return per_key, states, int(fulfilled)


@pytest.mark.timeout(180)
def test_two_hundred_hostile_clients(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    env = {"MAX_BODY_BYTES": str(MAX_BODY), "WORKER_CONCURRENCY": "16", "POLL_INTERVAL": "0.05"}
    tally = Tally()
    with running(tmp_path, f"sqlite:///{db}", env=env) as svc:
        assert svc.proc is not None
        started = time.monotonic()
        asyncio.run(storm(svc.url, svc.proc.pid, tally))
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _, states, _ = jobs_by_key(db)
            if set(states) <= {"succeeded"}:
                break
            time.sleep(0.25)
        per_key, states, fulfilled = jobs_by_key(db)
        log = svc.output()
    keys_sent = {key for key in tally.ids}
    lost = len(keys_sent - set(per_key))
    doubled = sum(1 for n in per_key.values() if n > 1)
    print(
        f"\nhostile clients: {CLIENTS} clients, {sum(tally.by_kind.values())} requests "
        f"in {elapsed:.1f}s; by kind {dict(tally.by_kind)}"
    )
    for status, n in sorted(tally.statuses.items()):
        print(f"  {status}: {n}")
    print(
        f"  5xx: {len(tally.server_errors)}; orders accepted {len(keys_sent)}, lost {lost}, "
        f"doubled {doubled}, states {states}, fulfilments {fulfilled}; "
        f"peak RSS {tally.peak_rss_kb // 1024} MB"
    )
    assert tally.server_errors == []
    assert tally.wrong == [], tally.wrong[:10]
    assert sum(tally.by_kind.values()) == REQUESTS
    assert lost == 0 and doubled == 0
    assert len(per_key) == len(keys_sent)  # nothing created by a bad request
    assert states == {"succeeded": len(keys_sent)}
    assert fulfilled == len(keys_sent)
    assert tally.peak_rss_kb < RSS_LIMIT_MB * 1024
    assert "Traceback" not in log, log[-4000:]


BAD_HOSTS = ["a" * 64, "a..b", "a" * 64 + ":8000", "."]


def raw_get(
    port: int, path: str, host: str, token: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET with exactly this ``Host`` line (no client library rewrites it)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.timeout(60)
@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_a_host_header_that_is_no_host_name_is_a_json_400(tmp_path: Path, server: str) -> None:
    db = tmp_path / "host.sqlite3"
    with running(tmp_path, f"sqlite:///{db}", env={"SERVER": server}) as svc:
        assert svc.port is not None
        answers = []
        for host in BAD_HOSTS:
            for path, token in (
                ("/healthz", None),
                ("/orders/1", VIP_KEY),
                ("/admin/api/stats", ADMIN_TOKEN),
            ):
                status, headers, body = raw_get(svc.port, path, host, token)
                answers.append((host, path, status, headers.get("content-type"), body))
        # A valid host still works after them.
        ok, _, _ = raw_get(svc.port, "/healthz", "localhost:1")
        log = svc.output()
    wrong = [
        a
        for a in answers
        if a[2] != 400
        or a[3] != "application/json"
        or json.loads(a[4])["error"]["code"] != "bad_request"
    ]
    assert wrong == [], wrong[:3]
    assert ok == 200
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
