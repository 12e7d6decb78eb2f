"""Pausing a queue from the dashboard, in a real browser (Debian's headless Chromium, driven by
Playwright, as in :mod:`.test_dashboard_browser`): ``orders serve`` runs with its embedded
worker; the Pause button of the default queue stops the orders from being processed (they
wait, counted in the queue's row, under a "paused since" badge); Resume lets them complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from .procs import ADMIN_TOKEN, REGULAR_KEY, auth, place, running
from .test_dashboard_browser import OUTPUT, browser_page

pytestmark = pytest.mark.acceptance

__all__ = ["browser_page"]  # the fixture, used by name


def order_status(client: httpx.Client, order_id: int) -> str:
    return str(client.get(f"/orders/{order_id}", headers=auth(REGULAR_KEY)).json()["status"])


def test_pause_a_queue_from_the_page_and_resume_it(tmp_path: Path, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    OUTPUT.mkdir(exist_ok=True)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    database = f"sqlite:///{tmp_path}/x.sqlite3"
    with (
        running(tmp_path, database) as svc,
        httpx.Client(base_url=svc.url, timeout=10) as client,
    ):
        first = int(str(place(client, REGULAR_KEY, processing_seconds=0)["id"]))
        page.goto(f"{svc.url}/admin/")
        page.fill("#token", ADMIN_TOKEN)
        page.click("#login")
        row = page.locator('#queues tr[data-queue="default"]')
        expect(row.locator("td.succeeded")).to_have_text("1")
        assert order_status(client, first) == "completed"
        expect(row.locator(".badge")).to_have_count(0)

        row.locator("button.pause").click()
        expect(page.locator("#toast")).to_contain_text("Queue 'default' paused")
        expect(row.locator(".badge.state-paused")).to_contain_text("paused since")
        expect(row.locator("button.resume")).to_be_visible()

        # Orders placed now wait: counted in the paused queue's row, none processed.
        waiting = [int(str(place(client, REGULAR_KEY, processing_seconds=0)["id"])) for _ in "ab"]
        expect(row.locator("td.queued")).to_have_text("2")
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        (paused,) = client.get("/admin/api/stats", headers=admin).json()["paused"]
        assert (paused["queue"], paused["queued"]) == ("default", 2)
        assert [order_status(client, o) for o in waiting] == ["queued", "queued"]
        page.screenshot(path=str(OUTPUT / "dashboard-paused.png"), full_page=True)

        row.locator("button.resume").click()
        expect(page.locator("#toast")).to_contain_text("Queue 'default' resumed")
        expect(row.locator("td.succeeded")).to_have_text("3")
        expect(row.locator(".badge")).to_have_count(0)
        assert [order_status(client, o) for o in waiting] == ["completed", "completed"]
    assert problems == [], problems
