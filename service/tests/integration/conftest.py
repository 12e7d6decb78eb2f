"""The order service through its real lifecycle: one settings builder and app fixture for every
integration test module; a module adjusts them by overriding ``settings_overrides``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from order_service.app import create_app
from order_service.config import Settings


def order_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """A fresh SQLite file in ``tmp_path``, the demo customers, and quick polling."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path}/orders.sqlite3",
        "orders_demo": True,
        "admin_token": "admin-secret-0123456789",
        "poll_interval": 0.05,
        "sqlite_synchronous": "NORMAL",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def app(tmp_path: Path, settings_overrides: dict[str, Any]) -> AsyncIterator[Quart]:
    app = create_app(order_settings(tmp_path, **settings_overrides))
    async with app.test_app():
        yield app


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()
