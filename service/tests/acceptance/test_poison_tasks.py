"""A task cannot take ``orders serve`` down, not even through the function it gives to
``jobs.transaction``, and a sync thread that never returns does not keep it alive after SIGTERM
or SIGINT: the library's poison tasks registered on the real command."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx
import pytest
from tests.acceptance import poison_app
from tests.acceptance.test_poison_tasks import (
    assert_signal_leaves_in_time,
    assert_transaction_rolled_back,
    enqueue,
    get,
    in_state,
    processes,
    signals,
    start,
)

from quart_jobs import JobState

from .procs import VIP_KEY, Service, auth, free_port, place, wait_until

__all__ = ["processes"]

pytestmark = pytest.mark.acceptance


@signals(signal.SIGTERM)
def test_orders_serve_survives_poison_tasks_and_exits_on_a_signal(
    tmp_path: Path, processes: list[Service], sig: signal.Signals
) -> None:
    url = f"sqlite:///{tmp_path}/orders.sqlite3"
    program = [sys.executable, "-m", "service.tests.acceptance.poison_serve", "serve"]
    svc = start(processes, tmp_path, program, url)
    svc.port = free_port()
    svc.env.update(PORT=str(svc.port), ORDERS_DEMO="1")
    svc.start().wait_ready()
    poisoned = [enqueue(url, name) for name in poison_app.POISONS]
    with httpx.Client(base_url=svc.url, timeout=10) as client:
        order = place(client, VIP_KEY, processing_seconds=0)
        assert wait_until(lambda: in_state(url, poisoned, JobState.FAILED), 30), svc.output()
        assert [get(url, i).error for i in poisoned] == poison_app.POISON_ERRORS
        assert_transaction_rolled_back(url)

        def completed() -> bool:
            found = client.get(f"/orders/{order['id']}", headers=auth(VIP_KEY)).json()
            return bool(found["status"] == "completed")

        assert wait_until(completed, 30), svc.output()
        assert client.get("/readyz").status_code == 200  # the web server and its worker live
    assert_signal_leaves_in_time(svc, url, enqueue(url, "poison.block_forever"), sig)
