"""The dashboard's wait charts and its "who waits longest" tables in a real browser (Debian's
headless Chromium, driven by Playwright, as in :mod:`.test_dashboard_browser`).

An hour of history is written into the store first, through the store's own enqueue, claim and
finish on a clock the test sets (the waits of a real hour, without waiting an hour): VIP jobs
that wait a fraction of a second, regular jobs whose waits grow from seconds to minutes. Then
the small admin app runs under Hypercorn with its embedded worker, which runs two more jobs
now. The page must draw, per tier, a p50 and a p99 line with a point for every minute that had
starts (as many as the JSON has), and list the five owners who waited longest in each tier.
The screenshot is ``test-output/dashboard-waits.png``.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from quart_jobs import Jobs, JobState
from quart_jobs.backends import Outcome
from quart_jobs.backends.base import ClaimScope
from quart_jobs.models import Lease, NewJob, Tier

from ..integration.admin_app import TOKEN as ADMIN_TOKEN
from .procs import admin_server, auth, wait_until
from .test_dashboard_browser import (
    OUTPUT,
    browser_page,
    enqueue_work,
    job_state,
    page_problems,
)

pytestmark = pytest.mark.acceptance

__all__ = ["browser_page"]  # the fixture, used by name

MINUTES = 50  # minutes of history, ending a few minutes ago


def history(database: str, now: float) -> None:
    """Per past minute, 2 VIP jobs and 4 regular ones, each due at a set moment (``run_at``)
    and started its wait later, then finished, on a clock set to those moments (the store's
    clock never goes back, so every job is enqueued first, then each is started alone: a job
    of its own task, claimed by that task)."""
    moment = [now - (MINUTES + 20) * 60]
    plan: list[tuple[float, float, Tier, str]] = []  # start, wait, tier, owner
    for minute in range(MINUTES):
        base = now - (MINUTES + 3 - minute) * 60
        waits = [(Tier.VIP, f"vip-{(minute + k) % 6}", 0.04 + 0.1 * k) for k in range(2)]
        waits += [
            (Tier.REGULAR, f"cust-{(minute + k) % 9}", (2 + minute * 1.5) * (1 + k))
            for k in range(4)
        ]
        plan += [(base + k * 5, wait, tier, owner) for k, (tier, owner, wait) in enumerate(waits)]

    async def write() -> None:
        async with Jobs(database, clock=lambda: moment[0]) as jobs:
            store = jobs._store
            new = [
                NewJob(f"history.{i}", priority=int(tier), owner=owner, run_at=start - wait)
                for i, (start, wait, tier, owner) in enumerate(plan)
            ]
            await store.enqueue(new, moment[0])
            for i, (start, _, _, _) in enumerate(plan):
                moment[0] = start
                scope = ClaimScope(tasks=(f"history.{i}",))
                (claimed,) = await store.claim("history", 1, start, 60, scope)
                lease = Lease(claimed.id, claimed.lease_token or "")
                moment[0] = start + 0.2
                await store.finish([Outcome(lease, JobState.SUCCEEDED)], moment[0])

    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        pool.submit(asyncio.run, write()).result()


def test_the_wait_charts_and_the_longest_waiting_owners(tmp_path: Path, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    OUTPUT.mkdir(exist_ok=True)
    problems = page_problems(page)

    database = f"sqlite:///{tmp_path}/x.sqlite3"
    history(database, time.time())
    with (
        admin_server(tmp_path, database) as svc,
        httpx.Client(base_url=svc.url, timeout=10) as client,
    ):
        now_jobs = [enqueue_work(database, tier, 1, 0) for tier in ("vip", "regular")]
        assert wait_until(lambda: all(job_state(client, j) == "succeeded" for j in now_jobs), 10)
        body = client.get("/admin/api/waits", headers=auth(ADMIN_TOKEN)).json()

        page.goto(f"{svc.url}/admin/")
        page.fill("#token", ADMIN_TOKEN)
        page.click("#login")
        expect(page.locator("#status")).to_contain_text("updated")

        for tier in body["tiers"]:
            name = tier["tier"]
            minutes_with_starts = sum(1 for b in tier["buckets"] if b["jobs"])
            assert minutes_with_starts >= MINUTES, (name, minutes_with_starts)
            figure = page.locator(f'#wait-charts figure[data-tier="{name}"]')
            for q in ("p50", "p99"):
                line = figure.locator(f"svg path.wait-{q}")
                expect(line).to_have_attribute("data-points", str(minutes_with_starts))
                assert (line.get_attribute("d") or "").count("L") >= MINUTES - 1
                expect(figure.locator(f"svg circle.wait-{q}")).to_have_count(minutes_with_starts)
            expect(figure.locator("figcaption")).to_contain_text(f"{tier['jobs']} started")
            owners = [o["owner"] for o in tier["longest_waiting_owners"]]
            assert len(owners) == 5
            rows = page.locator(f'#wait-owners table[data-tier="{name}"] tbody tr')
            expect(rows).to_have_count(5)
            expect(rows.locator("td.owner")).to_have_text(owners)
        # Regular waits grew to minutes; VIP waits stayed under a second.
        vip, regular = (
            next(t for t in body["tiers"] if t["tier"] == n) for n in ("vip", "regular")
        )
        assert vip["p99"] <= 1 and regular["p99"] >= 100
        assert regular["longest_waiting_owners"][0]["longest_wait"] >= 200
        # The throughput chart covers the same hour: a bar for each minute with finishes.
        hour = client.get("/admin/api/throughput?minutes=60", headers=auth(ADMIN_TOKEN)).json()
        bars = sum(1 for b in hour["buckets"] if b["succeeded"])
        assert bars >= MINUTES
        expect(page.locator("#chart svg rect.bar-succeeded")).to_have_count(bars)

        page.locator("#waits").scroll_into_view_if_needed()
        page.screenshot(path=str(OUTPUT / "dashboard-waits.png"), full_page=True)
        page.locator("#waits").screenshot(path=str(OUTPUT / "dashboard-waits-section.png"))

    assert problems == [], problems
    assert (OUTPUT / "dashboard-waits.png").stat().st_size > 10_000
