"""Pausing a queue from the dashboard, in a real browser (Debian's headless Chromium, driven by
Playwright, as in :mod:`.test_dashboard_browser`): the small admin app runs with its embedded
worker; the Pause button of the default queue stops its jobs from starting (they wait,
counted in the queue's row, under a "paused since" badge, and under "paused" in the table of
why jobs wait); Resume lets them run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ..integration.admin_app import TOKEN as ADMIN_TOKEN
from .procs import admin_server, wait_until
from .test_dashboard_browser import OUTPUT, browser_page, enqueue_work, job_state

pytestmark = pytest.mark.acceptance

__all__ = ["browser_page"]  # the fixture, used by name


def test_pause_a_queue_from_the_page_and_resume_it(tmp_path: Path, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    OUTPUT.mkdir(exist_ok=True)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    database = f"sqlite:///{tmp_path}/x.sqlite3"
    with (
        admin_server(tmp_path, database) as svc,
        httpx.Client(base_url=svc.url, timeout=10) as client,
    ):
        first = enqueue_work(database, "regular", 1, 0)
        page.goto(f"{svc.url}/admin/")
        page.fill("#token", ADMIN_TOKEN)
        page.click("#login")
        row = page.locator('#queues tr[data-queue="default"]')
        expect(row.locator("td.succeeded")).to_have_text("1")
        assert wait_until(lambda: job_state(client, first) == "succeeded", 10)
        expect(row.locator(".badge")).to_have_count(0)

        row.locator("button.pause").click()
        expect(page.locator("#toast")).to_contain_text("Queue 'default' paused")
        expect(row.locator(".badge.state-paused")).to_contain_text("paused since")
        expect(row.locator("button.resume")).to_be_visible()

        # Jobs enqueued now wait: counted in the paused queue's row, none started.
        waiting = [enqueue_work(database, "regular", n, 0) for n in (2, 3)]
        expect(row.locator("td.queued")).to_have_text("2")
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        (paused,) = client.get("/admin/api/stats", headers=admin).json()["paused"]
        assert (paused["queue"], paused["queued"]) == ("default", 2)
        assert [job_state(client, j) for j in waiting] == ["queued", "queued"]
        # Why they wait: the queue's row of the "why jobs wait" table says paused.
        why = page.locator('#waiting tr[data-queue="default"]')
        expect(why.locator('td[data-reason="paused"]')).to_have_text("2")
        expect(why.locator('td[data-reason="unserved"]')).to_have_text("\u2013")  # an en dash: none
        page.screenshot(path=str(OUTPUT / "dashboard-paused.png"), full_page=True)

        row.locator("button.resume").click()
        expect(page.locator("#toast")).to_contain_text("Queue 'default' resumed")
        expect(row.locator("td.succeeded")).to_have_text("3")
        expect(row.locator(".badge")).to_have_count(0)
        expect(page.locator("#waiting")).to_be_hidden()  # nothing waits any more
        assert wait_until(
            lambda: [job_state(client, j) for j in waiting] == ["succeeded", "succeeded"], 10
        )
    assert problems == [], problems
