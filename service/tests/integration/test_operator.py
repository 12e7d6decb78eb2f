"""The operator surface of the order service: ``/readyz`` writes, the interactive API docs are
off, ``/openapi.json`` stays."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_jobs import get_jobs
from quart_jobs.errors import BackendUnavailable


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"embedded_workers": False}


async def test_readyz_writes_and_answers_503_json_when_the_write_fails(
    app: Quart, client: Client
) -> None:
    store = get_jobs(app).operator
    real = store.probe_write
    probes = 0

    async def full_disk(now: float) -> None:
        nonlocal probes
        probes += 1
        await asyncio.sleep(0.05)
        raise BackendUnavailable("database or disk is full")

    ok = await client.get("/readyz")
    assert ok.status_code == 200 and (await ok.get_json())["checks"]["database"] == "ok"
    store.probe_write = full_disk  # type: ignore[method-assign]
    app.extensions["orders_readiness"].ttl = 0  # forget the last answer now
    try:
        answers = await asyncio.gather(*(client.get("/readyz") for _ in range(10)))
    finally:
        store.probe_write = real  # type: ignore[method-assign]
    assert probes == 1  # concurrent polls share one probe
    for answer in answers:
        assert answer.status_code == 503
        body = await answer.get_json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == "unavailable: database or disk is full"


async def test_the_interactive_api_docs_are_off_and_the_openapi_document_is_served(
    client: Client,
) -> None:
    for path in ("/docs", "/redocs", "/scalar"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "cdn" not in (await response.get_data(True)).lower()
    document = await client.get("/openapi.json")
    assert document.status_code == 200 and "/orders" in (await document.get_json())["paths"]
