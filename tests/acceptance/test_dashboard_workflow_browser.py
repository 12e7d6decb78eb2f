"""The dashboard shows a workflow as it runs, in a real browser: a job that reports its
progress step by step has a bar in the running table and in its details, and a job enqueued
to run after it shows what it depends on (``waiting``, the parent unfinished) until the parent
succeeded, then ends with the parents' counts; the parent lists its dependant."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from quart_jobs import Jobs

from ..integration import admin_app
from ..integration.admin_app import STEPS_TASK, TASK
from ..integration.admin_app import TOKEN as ADMIN_TOKEN
from .procs import admin_server, wait_until
from .test_dashboard_browser import OUTPUT, browser_page, job_state, page_problems

pytestmark = pytest.mark.acceptance

__all__ = ["browser_page"]  # the fixture, used by name


def enqueue_chain(database: str) -> tuple[int, int]:
    """A ``work.steps`` job (4 steps of 1.5 s) and a ``work.run`` job after it: their ids."""

    async def enqueue() -> tuple[int, int]:
        jobs = Jobs(database)
        jobs.register(admin_app.steps, name=STEPS_TASK)
        jobs.register(admin_app.run, name=TASK)
        async with jobs:
            parent = await jobs.enqueue(admin_app.steps, 4, 1.5)
            child = await jobs.options(after=[parent]).enqueue(admin_app.run, 7)
            return parent.id, child.id

    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        return pool.submit(asyncio.run, enqueue()).result()


def test_progress_bars_and_dependencies_on_the_page(tmp_path: Path, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    OUTPUT.mkdir(exist_ok=True)
    problems = page_problems(page)
    database = f"sqlite:///{tmp_path}/w.sqlite3"
    with (
        admin_server(tmp_path, database) as svc,
        httpx.Client(base_url=svc.url, timeout=10) as client,
    ):
        page.goto(f"{svc.url}/admin/")
        page.fill("#token", ADMIN_TOKEN)
        page.click("#login")
        expect(page.locator("#status")).to_contain_text("updated")
        parent, child = enqueue_chain(database)

        # The parent runs and reports: a bar in the running table, with its message.
        row = page.locator(f'#running tr[data-job-id="{parent}"]')
        expect(row.locator("progress")).to_be_visible()
        expect(row).to_contain_text("of 4 steps")

        # The dependant waits for it, and says so (found by its id, as an operator would).
        page.fill("#find-id", str(child))
        page.press("#find-id", "Enter")
        fields = page.locator("#detail-fields")
        expect(page.locator("#detail-title")).to_contain_text(f"Job #{child}")
        expect(page.locator("#detail-title")).to_contain_text("waiting")
        expect(fields).to_contain_text(f"Depends on#{parent} {STEPS_TASK} running")
        expect(fields).to_contain_text("0 succeeded, 0 failed, 0 cancelled, 1 unfinished of 1")
        page.screenshot(path=str(OUTPUT / "dashboard-workflow.png"), full_page=True)

        # Once the parent succeeded, the dependant ran, and the page follows.
        assert wait_until(lambda: job_state(client, child) == "succeeded", 30)
        expect(page.locator("#detail-title")).to_contain_text("succeeded")
        expect(fields).to_contain_text(f"Depends on#{parent} {STEPS_TASK} succeeded")
        expect(fields).to_contain_text("1 succeeded, 0 failed, 0 cancelled, 0 unfinished of 1")

        # The parent lists its dependant, and keeps its last progress: 4 of 4.
        page.click("#detail-close")
        page.fill("#find-id", str(parent))
        page.press("#find-id", "Enter")
        expect(page.locator("#detail-title")).to_contain_text(f"Job #{parent}")
        expect(fields).to_contain_text(f"Dependants#{child} {TASK} succeeded")
        expect(fields.locator("progress")).to_have_attribute("value", "1")
        expect(fields).to_contain_text("100% 4 of 4 steps")

    assert problems == [], problems
