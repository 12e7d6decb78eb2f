"""``orders serve`` (the real command) with the poison tasks registered on its app."""

from __future__ import annotations

from quart import Quart
from tests.acceptance import poison_app

from order_service import cli
from order_service.config import Settings
from quart_jobs import get_jobs

_create_app = cli.create_app


def create_app(settings: Settings) -> Quart:
    app = _create_app(settings)
    poison_app.register(get_jobs(app))
    return app


cli.create_app = create_app

if __name__ == "__main__":
    cli.main()
