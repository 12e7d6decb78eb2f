"""``orders serve`` / ``orders worker`` as real processes on a free port, with the demo
customers' keys; the process helpers themselves are the library's
(:mod:`tests.acceptance.procs`)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.acceptance.procs import (
    BIN,
    FULL,
    Service,
    auth,
    free_port,
    freeze_holding,
    full_only,
    process_env,
    wait_until,
)

__all__ = [
    "ADMIN_TOKEN",
    "BIN",
    "FULL",
    "ORDERS",
    "REGULAR_KEY",
    "VIP_KEY",
    "Service",
    "auth",
    "free_port",
    "freeze_holding",
    "full_only",
    "place",
    "queued_orders",
    "running",
    "serve_once",
    "service_env",
    "taken_port",
    "wait_until",
]

VIP_KEY = "demo-vip-key"
REGULAR_KEY = "demo-regular-key"
ADMIN_TOKEN = "demo-admin-token"
#: One web process with one slot, for bounds that are one worker's (the default runs a web
#: process per CPU on SQLite; several processes have tests of their own).
ONE_SLOT = {"WORKER_CONCURRENCY": "1", "WEB_PROCESSES": "1"}
#: The order service's command.
ORDERS = [str(BIN / "orders")]


def service_env(database_url: str, port: int | None, **extra: str) -> dict[str, str]:
    """A process environment (:func:`process_env`) with the demo customers."""
    return process_env(database_url, port, **{"ORDERS_DEMO": "1", **extra})


@contextmanager
def running(
    tmp_path: Path,
    database_url: str,
    *,
    command: str = "serve",
    name: str = "serve",
    env: Mapping[str, str] | None = None,
    ready: bool = True,
) -> Iterator[Service]:
    port = free_port() if command == "serve" else None
    svc = Service(
        args=[command],
        env=service_env(database_url, port, **dict(env or {})),
        log_path=tmp_path / f"{name}.log",
        port=port,
        program=ORDERS,
    ).start()
    try:
        if ready and command == "serve":
            svc.wait_ready()
        yield svc
    finally:
        svc.stop()


def place(client: httpx.Client, key: str, **body: object) -> dict[str, object]:
    payload = {"items": [{"sku": "A-1", "quantity": 1}], **body}
    response = client.post("/orders", json=payload, headers=auth(key))
    assert response.status_code == 202, response.text
    data: dict[str, object] = response.json()
    return data


def serve_once(database_url: str, port: int, **env: str) -> subprocess.CompletedProcess[str]:
    """``orders serve`` run to its end (a start-up that fails), its output captured."""
    return subprocess.run(
        [*ORDERS, "serve"],
        env=service_env(database_url, port, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def queued_orders(tmp_path: Path, database_url: str, count: int) -> None:
    """``count`` VIP orders placed through a server that runs no worker: queued, unclaimed."""
    with (
        running(tmp_path, database_url, env={"EMBEDDED_WORKERS": "0"}) as web,
        httpx.Client(base_url=web.url) as client,
    ):
        for _ in range(count):
            place(client, VIP_KEY, processing_seconds=0)


@contextmanager
def taken_port() -> Iterator[int]:
    """A port another socket listens on for the duration."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]
