"""What the commands print: tables for people, JSON for scripts (``--json``), times and ages."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from ..models import MAX_JOB_ID, JobState, Stats, Tier, WaitReason
from ..pausing import paused_summary
from ..unserved import tasks_text, unserved_summary, worker_summary

#: A job id: a larger one (or 0) is a usage error (exit 2), never asked of the store.
JOB_ID = click.IntRange(1, MAX_JOB_ID)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s // 60 % 60:02d}m"
    return f"{s // 86400}d {s // 3600 % 24}h"


def stats_dict(stats: Stats, now: float) -> dict[str, Any]:
    tiers = sorted({p for _, p in stats.counts} | set(stats.oldest_queued) | {int(t) for t in Tier})
    return {
        "counts": {Tier.name_of(p): {s.value: stats.count(s, p) for s in JobState} for p in tiers},
        "totals": {s.value: stats.count(s) for s in JobState},
        "oldest_queued": {Tier.name_of(p): t for p, t in stats.oldest_queued.items()},
        "oldest_waiting_seconds": {
            Tier.name_of(p): max(0.0, now - t) for p, t in stats.oldest_queued.items()
        },
        "queues": {
            queue: {s.value: stats.queues.get((queue, s), 0) for s in JobState}
            for queue in sorted({q for q, _ in stats.queues})
        },
        "workers": [worker_summary(w, now) for w in stats.workers],
        "unserved": [unserved_summary(u) for u in stats.unserved],
        "paused": paused_summary(stats),
        "waiting": stats.waiting.summary(),
    }


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right or set()
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def echo_serving(stats: Stats, now: float) -> None:
    """The live workers (a table) and one line per unserved (queue, task)."""
    if stats.workers:
        rows = [
            [
                w.name,
                str(w.concurrency),
                "all" if w.queues is None else ",".join(w.queues),
                tasks_text(w.tasks),
                f"{age(now - w.seen_at)} ago",
            ]
            for w in stats.workers
        ]
        click.echo(f"live workers: {len(stats.workers)}")
        click.echo(table(["worker", "slots", "queues", "tasks", "last seen"], rows, right={1}))
    else:
        click.echo("live workers: none (start one: quart-jobs worker --app MODULE:APP)")
    for item in stats.unserved:
        click.echo(f"unserved: {item.describe()}")


def echo_waiting(stats: Stats) -> None:
    """Why jobs are not starting: a row per queue that has any, a column per reason."""
    by_queue = stats.waiting.by_queue()
    if not by_queue:
        return
    reasons = list(WaitReason)
    rows = [
        [queue, *(stats.waiting.describe(queue, r) if r in held else "-" for r in reasons)]
        for queue, held in by_queue.items()
    ]
    click.echo("why jobs wait (each job under the first reason that holds it):")
    headers = ["queue", *(r.value.replace("_", " ") for r in reasons)]
    click.echo(table(headers, rows, right=set(range(1, len(headers)))))
    click.echo("")


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, default=str))
