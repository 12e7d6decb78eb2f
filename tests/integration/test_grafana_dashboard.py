"""The Grafana dashboard shipped in the docs (``docs/grafana/quart-jobs.json``) against a real
scrape: every metric its queries name is in ``GET /metrics`` of the small admin app after it
ran jobs that succeed, retry, fail, are cancelled and wait for no worker; every label a query
groups by is a label of the metrics it reads."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from quart_jobs import JobState, get_jobs
from quart_jobs.models import NewJob

from . import admin_app
from .conftest import admin_url

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "quart-jobs.json"
METRIC = re.compile(r"\bquart_jobs_[a-z0-9_]+")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL text of the dashboard: its panels' targets and its variables' queries."""
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    for variable in dashboard.get("templating", {}).get("list", ()):
        query = variable.get("query")
        found.append(query["query"] if isinstance(query, dict) else str(query))
    return found


async def scrape_after_some_jobs(tmp_path: Path) -> dict[str, set[str]]:
    """Sample names of a scrape, each with the label names its samples carry."""
    app = admin_app.create_app(admin_url(tmp_path), embedded_worker=True, max_attempts=2)
    async with app.test_app():
        jobs = get_jobs(app)
        ok = await admin_app.enqueue(jobs, "vip", 1, 0)
        doomed = await admin_app.enqueue(jobs, "regular", 2, 0, 5)  # retried, then failed
        later = await jobs.options(delay=3600).enqueue(admin_app.TASK, 3)
        await jobs.cancel(later.id)
        await jobs._store.enqueue([NewJob("reports.nightly")], jobs.clock())  # nobody serves it
        async with asyncio.timeout(10):
            while (await jobs.get(ok.id)).state is not JobState.SUCCEEDED or (
                await jobs.get(doomed.id)
            ).state is not JobState.FAILED:
                await asyncio.sleep(0.02)
        response = await app.test_client().get("/metrics")
        assert response.status_code == 200
        text = await response.get_data(True)
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


async def test_every_metric_the_dashboard_names_is_in_a_real_scrape(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    texts = queries(dashboard)
    named = {name for text in texts for name in METRIC.findall(text)}
    assert len(named) >= 10, named
    scraped = await scrape_after_some_jobs(tmp_path)
    missing = sorted(named - set(scraped))
    assert missing == [], f"the dashboard reads metrics /metrics does not have: {missing}"
    for text in texts:
        have = set().union(*(scraped[name] for name in METRIC.findall(text)))
        for group in GROUPING.findall(text):
            wanted = {label.strip() for label in group.split(",") if label.strip()}
            assert wanted <= have, f"{text}: no such labels {sorted(wanted - have)}"
    # Panels and the variable all read the one datasource input the dashboard declares.
    (source,) = dashboard["__inputs"]
    uid = "${" + source["name"] + "}"
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {uid}
