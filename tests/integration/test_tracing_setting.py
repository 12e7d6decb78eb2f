"""``QUART_JOBS_TRACING``: the extension instruments jobs while its app serves (``on``; ``auto``
only when the process set a tracer provider), and undoes it when the app stops."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from quart import Quart

from quart_jobs import ConfigurationError, QuartJobs
from quart_jobs.tracing import HOOKS


def app_with(tmp_path: Path, tracing: object) -> Quart:
    app = Quart(__name__)
    app.config.update(
        QUART_JOBS_DATABASE_URL=f"sqlite:///{tmp_path}/jobs.sqlite3",
        QUART_JOBS_EMBEDDED_WORKER=False,
        QUART_JOBS_TRACING=tracing,
    )
    QuartJobs(app)
    return app


@pytest.mark.parametrize("value", ["on", True, "1"])
async def test_on_instruments_while_the_app_serves(tmp_path: Path, value: object) -> None:
    app = app_with(tmp_path, value)
    assert HOOKS.enqueue is None
    async with app.test_app():
        assert HOOKS.enqueue is not None and HOOKS.attempt is not None
    assert HOOKS.enqueue is None and HOOKS.attempt is None


@pytest.mark.parametrize("value", ["off", "auto"])
async def test_off_and_auto_without_a_tracer_provider_do_not(tmp_path: Path, value: str) -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # none set here
    async with app_with(tmp_path, value).test_app():
        assert HOOKS.enqueue is None


def test_a_value_that_is_no_choice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"QUART_JOBS_TRACING.*auto, on"):
        QuartJobs(tracing="sometimes")
