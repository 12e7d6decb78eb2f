"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright.

A small app with the admin and an embedded worker (``tests.integration.admin_app``) runs under
Hypercorn as a real process. The test enqueues a job that succeeds and one that fails (more
failing attempts than its one allowed attempt), logs in with the admin token, reads the counts
(by state, tier and queue), opens the failed job's details, clicks Retry and sees the job
running again. Screenshots go to ``test-output/`` at the repository root (``dashboard.png``
is the last state).

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium chromium-driver``) and the
``playwright`` package; never ``playwright install``: no browser is downloaded. Without them
the test is skipped with the reason, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from quart_jobs import Jobs
from quart_jobs.models import NewJob

from ..conftest import IN_CI
from ..integration import admin_app
from ..integration.admin_app import TASK
from ..integration.admin_app import TOKEN as ADMIN_TOKEN
from .procs import admin_server, auth, wait_until

pytestmark = pytest.mark.acceptance

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
TIMEOUT_MS = 15_000


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -e '.[dev]'"
    return None


@pytest.fixture
def browser_page() -> Iterator[Any]:
    reason = _missing()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: the browser test must run)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            # A US locale in a time zone that is not UTC: the dashboard's dates must still be
            # ISO 8601 in UTC, as the command line prints them.
            context = browser.new_context(
                viewport={"width": 1400, "height": 1100},
                locale="en-US",
                timezone_id="America/New_York",
            )
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
            context.close()
        finally:
            browser.close()


async def enqueue_unknown(database: str, task: str) -> None:
    """Store, from this process, a job of a task that no worker of the app has (as another
    application on the same database would)."""
    async with Jobs(database) as jobs:
        await jobs._store.enqueue([NewJob(task)], jobs.clock())


def enqueue_work(database: str, tier: str, *args: object) -> int:
    """A job of the app's task, stored from this process (in a thread of its own: Playwright's
    loop runs in this one); its id."""

    async def enqueue() -> int:
        jobs = Jobs(database, max_attempts=1)  # one attempt: a failure is final
        jobs.register(admin_app.run, name=TASK)
        async with jobs:
            return (await admin_app.enqueue(jobs, tier, *args)).id

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, enqueue()).result()


def page_problems(page: Any) -> list[str]:
    """The page's script errors and CSP violations, as they come (the login page's own 401
    status is expected, not one)."""
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text) if m.type == "error" and "status of 401" not in m.text else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def job_state(client: httpx.Client, job_id: int) -> str:
    response = client.get(f"/admin/api/jobs/{job_id}", headers=auth(ADMIN_TOKEN))
    return str(response.json()["job"]["state"])


def test_log_in_see_the_counts_and_retry_a_failed_job(tmp_path: Path, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    OUTPUT.mkdir(exist_ok=True)
    problems = page_problems(page)

    database = f"sqlite:///{tmp_path}/x.sqlite3"
    with (
        admin_server(tmp_path, database, ADMIN_APP_MAX_ATTEMPTS="1") as svc,
        httpx.Client(base_url=svc.url, timeout=10) as client,
    ):
        ok = enqueue_work(database, "vip", 1, 0.1)
        # Each run takes 2 s and fails: long enough to be seen running after the retry.
        doomed = enqueue_work(database, "regular", 42, 2, 3)
        assert wait_until(lambda: job_state(client, doomed) == "failed", 20)
        assert wait_until(lambda: job_state(client, ok) == "succeeded", 10)

        # Not logged in: the login form, not the data.
        page.goto(f"{svc.url}/admin/")
        expect(page.locator("#token")).to_be_visible()
        page.fill("#token", "not-the-token")
        page.click("#login")
        expect(page.locator(".message")).to_contain_text("not valid")
        page.fill("#token", ADMIN_TOKEN)
        page.click("#login")

        # The counts, by state and by tier, as the database has them.
        expect(page.locator("#total-failed")).to_have_text("1")
        expect(page.locator("#total-succeeded")).to_have_text("1")
        expect(page.locator("#total-queued")).to_have_text("0")
        expect(page.locator('#tiers tr[data-tier="vip"] td.succeeded')).to_have_text("1")
        expect(page.locator('#tiers tr[data-tier="regular"] td.failed')).to_have_text("1")
        # And by queue: both jobs went to the default queue.
        default_queue = page.locator('#queues tr[data-queue="default"]')
        expect(default_queue.locator("td.queue")).to_have_text("default")
        expect(default_queue.locator("td.succeeded")).to_have_text("1")
        expect(default_queue.locator("td.failed")).to_have_text("1")
        expect(page.locator("#queues tbody tr")).to_have_count(1)
        expect(page.locator("#chart svg rect.bar-succeeded")).to_have_count(1)
        expect(page.locator("#chart svg rect.bar-failed")).to_have_count(1)
        expect(page.locator("#status")).to_contain_text("updated")
        cookies = {c["name"]: c for c in page.context.cookies()}
        session = cookies["quart_jobs_admin"]
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        assert ADMIN_TOKEN not in session["value"]

        failed_row = page.locator(f'#failed tr[data-job-id="{doomed}"]')
        expect(failed_row).to_contain_text("SimulatedFailure")
        page.screenshot(path=str(OUTPUT / "dashboard-failed.png"), full_page=True)

        # The job detail view: arguments, attempts, error with its traceback.
        failed_row.locator("a.job").click()
        drawer = page.locator("#detail")
        expect(drawer).to_be_visible()
        expect(page.locator("#detail-title")).to_contain_text(f"Job #{doomed}")
        expect(page.locator("#detail-args")).to_contain_text(
            '"args": [\n    42,\n    2,\n    3\n  ]'
        )
        expect(page.locator("#detail-error")).to_contain_text("Traceback")
        expect(page.locator("#detail-error")).to_contain_text("SimulatedFailure")
        expect(page.locator("#detail-fields")).to_contain_text("1 of 1")
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        job = client.get(f"/admin/api/jobs/{doomed}", headers=admin).json()["job"]
        enqueued = dt.datetime.fromtimestamp(job["enqueued_at"], dt.UTC)
        expect(page.locator("#detail-fields")).to_contain_text(
            f"Enqueued{enqueued:%Y-%m-%d %H:%M:%S} UTC"
        )
        expect(page.locator("#status")).to_have_text(re.compile(r"updated \d\d:\d\d:\d\d UTC"))
        page.screenshot(path=str(OUTPUT / "dashboard-detail.png"), full_page=True)
        page.click("#detail-close")
        expect(drawer).to_be_hidden()

        # Retry from the page: the job is queued and running again.
        failed_row.locator("button.retry").click()
        expect(page.locator("#toast")).to_contain_text(f"Job #{doomed} queued again")
        expect(page.locator(f'#running tr[data-job-id="{doomed}"]')).to_be_visible()
        expect(page.locator(f'#failed tr[data-job-id="{doomed}"]')).to_have_count(0)
        expect(page.locator("#total-running")).to_have_text("1")
        assert job_state(client, doomed) in ("queued", "running")
        page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)

        # And it fails again (fail_times 3 > 1 attempt): back in the failed list, by itself.
        expect(page.locator(f'#failed tr[data-job-id="{doomed}"]')).to_be_visible()
        assert job_state(client, doomed) == "failed"

        # Who serves what: the embedded worker is live, and nothing waits for nobody ...
        expect(page.locator("#workers tbody tr")).to_have_count(1)
        expect(page.locator("#workers tbody tr td.tasks")).to_contain_text(TASK)
        expect(page.locator("#unserved")).to_be_hidden()
        # ... until a job of a task that no running worker has arrives: a visible warning.
        with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
            pool.submit(asyncio.run, enqueue_unknown(database, "reports.nightly")).result()
        alert = page.locator("#unserved")
        expect(alert).to_be_visible()
        expect(alert.locator('li[data-task="reports.nightly"]')).to_have_text(
            "1 ready job of task 'reports.nightly' in queue 'default': "
            "no running worker has that task registered"
        )
        page.screenshot(path=str(OUTPUT / "dashboard-unserved.png"), full_page=True)

        # Logging out ends the session: the API answers 401 to the browser.
        page.click("text=Log out")
        expect(page.locator("#token")).to_be_visible()
        status = page.evaluate("fetch('/admin/api/stats').then(r => r.status)")
        assert status == 401

    assert problems == [], problems
    assert (OUTPUT / "dashboard.png").stat().st_size > 10_000
