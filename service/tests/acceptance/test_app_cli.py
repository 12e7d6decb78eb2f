"""The ``jobs`` commands of the library in the order service's own command line
(``quart --app order_service.app:create_app jobs ...``), against a seeded SQLite file."""

from __future__ import annotations

import subprocess

import pytest
from tests.acceptance.test_cli import BIN, Seeded, as_json, db, env

__all__ = ["db"]

pytestmark = pytest.mark.acceptance


def test_the_jobs_commands_in_the_order_services_app_cli(db: Seeded) -> None:
    result = subprocess.run(
        [str(BIN / "quart"), "--app", "order_service.app:create_app", "jobs", "stats", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env(), "DATABASE_URL": db.url},
        check=False,
    )
    data = as_json(result)
    assert data["totals"]["failed"] == 3
    show = subprocess.run(
        [str(BIN / "quart"), "--app", "order_service.app:create_app", "jobs", "show", "99999"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env(), "DATABASE_URL": db.url},
        check=False,
    )
    assert show.returncode == 1 and "no job has id 99999" in show.stderr
