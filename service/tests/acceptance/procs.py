"""``orders serve`` / ``orders worker`` as real processes on a free port, with the demo
customers' keys; the process helpers themselves are the library's
(:mod:`tests.acceptance.procs`)."""

from __future__ import annotations

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
    "running",
    "service_env",
    "wait_until",
]

VIP_KEY = "demo-vip-key"
REGULAR_KEY = "demo-regular-key"
ADMIN_TOKEN = "demo-admin-token"
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
