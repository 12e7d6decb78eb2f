"""W3 HTTP intake: ``POST /orders`` under a real server, loaded by wrk (64 connections).

Each its own process on this machine, loaded in turn by ``wrk -t1 -c64``:

* the order service (``orders serve``: its default server, uvicorn; a fresh SQLite file,
  ``ORDERS_DEMO=1``, its embedded worker running the orders, ``processing_seconds: 0``): each
  202 only after COMMIT; then the same with ``SERVER=hypercorn``, and under granian's CLI;
* the same kind of Quart app with an in-memory ``asyncio.PriorityQueue``
  (:mod:`bench.in_memory_apps`), on the same servers (uvicorn, then Hypercorn), and on uvicorn
  with the garbage collector set as ``orders serve`` sets it (``BENCH_GC=1``: a like-for-like row);
* a minimal aiohttp in-memory intake.

wrk and the server share the 2 cores, as they would on one small box. For the order service
the run also says what its embedded worker made of the flood (:func:`_flood`): the share of the
accepted orders completed when wrk ended, and the accepted orders per second from the first
one's acceptance to the last one's completion.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from ..common import Config, Measurement, not_run, one_line, per_round

WORKLOAD = "W3 HTTP intake"
CONNECTIONS = 64
ORDERS = "order service (quart-jobs SQLite FULL, `orders serve`: uvicorn)"
# The same app under the other ASGI servers a user might pick (so the default is the best one).
ORDERS_HYPERCORN = "order service under Hypercorn (SERVER=hypercorn)"
ORDERS_GRANIAN = "order service under granian (its CLI)"
SERVERS = {
    ORDERS_GRANIAN: [
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--no-ws",
        "--log-level",
        "warning",
        "--port",
        "{port}",
        "order_service.app:create_app",
    ],
}
QUART_MEM = "Quart + asyncio.PriorityQueue (uvicorn)"
#: The same in-memory app with the garbage collector set as ``orders serve`` sets it.
QUART_MEM_GC = "Quart + asyncio.PriorityQueue (uvicorn, GC as `orders serve`)"
QUART_MEM_HYPERCORN = "Quart + asyncio.PriorityQueue (Hypercorn)"
AIOHTTP_MEM = "aiohttp + asyncio.PriorityQueue"
#: The in-memory apps of bench.in_memory_apps, by the kind its command line takes.
MEMORY_APPS = {
    QUART_MEM: "quart-uvicorn",
    QUART_MEM_GC: "quart-uvicorn",
    QUART_MEM_HYPERCORN: "quart",
    AIOHTTP_MEM: "aiohttp",
}
BODY = '{"items": [{"sku": "bench-1", "quantity": 1}], "processing_seconds": 0}'
LUA = f"""wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer demo-regular-key"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"server not listening on {port} after {timeout:.0f}s")


def orders_missing() -> str | None:
    try:
        from order_service import cli
    except ImportError as exc:
        return f"the order service is not importable ({one_line(exc)})"
    if "serve" not in getattr(cli.main, "commands", {}):
        return "`orders serve` does not exist yet"
    return None


def _installed(command: str) -> bool:
    return (Path(sys.executable).parent / command).exists()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")) if p
    )
    return env


def _command(system: str, port: int, workdir: Path) -> tuple[list[str], dict[str, str]]:
    env = _env()
    if system in (ORDERS, ORDERS_HYPERCORN) or system in SERVERS:
        db = workdir / f"orders-{uuid.uuid4().hex[:8]}.sqlite3"
        env |= {
            "DATABASE_URL": f"sqlite:///{db}",
            "ORDERS_DEMO": "1",
            "MAX_QUEUED": "10000000",
            "MAX_QUEUED_PER_CUSTOMER": "10000000",
        }
        if system in SERVERS:
            server = [a.format(port=port) for a in SERVERS[system]]
            return [str(Path(sys.executable).parent / server[0]), *server[1:]], env
        if system == ORDERS_HYPERCORN:
            env["SERVER"] = "hypercorn"
        else:
            env.pop("SERVER", None)  # the default of `orders serve`
        code = "from order_service.cli import main; main()"
        return [sys.executable, "-c", code, "serve", "--port", str(port)], env
    if system == QUART_MEM_GC:
        env["BENCH_GC"] = "1"
    return [sys.executable, "-m", "bench.in_memory_apps", MEMORY_APPS[system], str(port)], env


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(text: str) -> dict[str, float]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if rps is None:
        raise RuntimeError(f"wrk printed no Requests/sec: {text[-300:]!r}")
    out = {"requests/s": float(rps.group(1))}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        if m:
            out[f"p{pct} ms"] = float(m.group(1)) * _UNITS[m.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    out["non-2xx"] = float(bad.group(1)) if bad else 0.0
    out["socket errors"] = (
        float(sum(int(x) for x in re.findall(r"\d+", errors.group(0)))) if errors else 0.0
    )
    return out


#: The flood's metrics of the order service (``orders serve`` with its embedded worker).
COMPLETED_IN_FLOOD = "completed during the flood %"
FLOOD_RATE = "accepted and completed orders/s"
#: Seconds the order service may take after wrk ends to complete the orders it accepted.
DRAIN_BUDGET = 300.0


def _flood(db: Path, budget: float = DRAIN_BUDGET) -> dict[str, float]:
    """What the order service's embedded worker made of the flood it just took (the server
    still runs): the share of accepted orders completed when wrk ended, and the accepted orders
    over the time from the first one's acceptance to the last one's completion (the in-memory
    app completes each as it accepts it, so its rate is its requests/s)."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        query = (
            "SELECT count(*), sum(finished_at IS NOT NULL), min(enqueued_at), max(finished_at) "
            "FROM qj_jobs WHERE task = 'orders.process'"
        )
        total, done, _, _ = conn.execute(query).fetchone()
        deadline = time.monotonic() + budget
        while True:
            total_now, done_now, first, last = conn.execute(query).fetchone()
            if done_now >= total_now or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        conn.close()
    if not total or done_now < total_now:
        raise RuntimeError(f"{done_now} of {total_now} orders completed in {budget:.0f} s")
    return {COMPLETED_IN_FLOOD: 100.0 * done / total, FLOOD_RATE: total_now / (last - first)}


def _load(system: str, cfg: Config, seconds: int) -> dict[str, float]:
    port = _free_port()
    cmd, env = _command(system, port, cfg.workdir)
    script = cfg.workdir / "post.lua"
    script.write_text(LUA)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        result = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{CONNECTIONS}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}/orders",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
        stats = parse_wrk(result.stdout)
        if system == ORDERS:
            stats |= _flood(Path(env["DATABASE_URL"].removeprefix("sqlite:///")))
        return stats
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run(cfg: Config, log: Callable[[str], None]) -> list[Measurement]:
    if shutil.which("wrk") is None:
        return [not_run(WORKLOAD, "all", "requests/s", "wrk not installed (apt-get install wrk)")]
    systems = [QUART_MEM, QUART_MEM_GC, QUART_MEM_HYPERCORN, AIOHTTP_MEM]
    missing = orders_missing()
    out: list[Measurement] = []
    if missing:
        out.append(not_run(WORKLOAD, ORDERS, "requests/s", missing))
    else:
        systems[:0] = [ORDERS, ORDERS_HYPERCORN] + [
            s for s, cmd in SERVERS.items() if _installed(cmd[0])
        ]
    seconds = 3 if cfg.quick else 10

    def row(system: str, metric: str) -> Measurement:
        return Measurement(
            WORKLOAD,
            system,
            metric,
            metric.split(" ")[-1],
            n=None,
            note=f"wrk -t1 -c{CONNECTIONS} -d{seconds}s",
            higher_is_better=metric in ("requests/s", COMPLETED_IN_FLOOD, FLOOD_RATE),
        )

    out += await per_round(
        cfg,
        systems,
        lambda system: _load(system, cfg, seconds),
        row,
        log,
        workload=WORKLOAD,
        metric="requests/s",
    )
    return out


def ratios(rows: list[Measurement]) -> list[str]:
    med = {(m.system, m.metric): m.median for m in rows if m.workload == WORKLOAD and m.ok}
    ours = med.get((ORDERS, "requests/s"))
    mem = med.get((QUART_MEM, "requests/s"))
    aio = med.get((AIOHTTP_MEM, "requests/s"))
    out = []
    if ours and mem:
        p99 = med.get((ORDERS, "p99 ms"))
        line = (
            f"target W3 durable intake >= 1.0x in-memory Quart (both uvicorn): {ours / mem:.2f}x "
            f"{'MET' if ours / mem >= 1.0 else 'MISSED'}"
        )
        if p99 is not None:
            line += f"; p99 <= 50 ms: {p99:.1f} ms {'MET' if p99 <= 50 else 'MISSED'}"
        if aio:
            line += f" (vs aiohttp in-memory: {ours / aio:.2f}x)"
        out.append(line)
    flood_rate, in_flood = med.get((ORDERS, FLOOD_RATE)), med.get((ORDERS, COMPLETED_IN_FLOOD))
    if flood_rate and mem and in_flood is not None:
        ok = flood_rate / mem >= 0.5 and in_flood >= 50
        out.append(
            f"target W3 flood: accepted and completed orders/s >= 0.5x in-memory Quart's "
            f"requests/s, >= 50 % completed during the flood: {flood_rate / mem:.2f}x, "
            f"{in_flood:.0f} % {'MET' if ok else 'MISSED'} ({flood_rate:,.0f}/s vs {mem:,.0f}/s)"
        )
    mem_gc = med.get((QUART_MEM_GC, "requests/s"))
    if ours and mem_gc:
        out.append(
            f"W3 durable / in-memory Quart with the same GC setting (uvicorn): {ours / mem_gc:.2f}x"
        )
    hyper = med.get((ORDERS_HYPERCORN, "requests/s"))
    hyper_mem = med.get((QUART_MEM_HYPERCORN, "requests/s"))
    if hyper and hyper_mem:
        out.append(f"W3 under Hypercorn: durable = {hyper / hyper_mem:.2f}x in-memory Quart")
    for server in (ORDERS, *SERVERS):
        theirs = med.get((server, "requests/s"))
        if hyper and theirs:
            p99 = med.get((server, "p99 ms"))
            out.append(
                f"server choice: {server} = {theirs / hyper:.2f}x Hypercorn requests/s"
                + (f", p99 {p99:.1f} ms" if p99 is not None else "")
            )
    return out
