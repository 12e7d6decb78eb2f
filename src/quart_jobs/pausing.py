"""Paused queues as the CLI, the admin and ``/metrics`` show them: a queue's state (paused or
not, since when) with what waits in it, from one :class:`~quart_jobs.models.Stats`."""

from __future__ import annotations

from typing import Any

from .models import JobState, Stats


def queue_state(stats: Stats, queue: str) -> dict[str, Any]:
    """One queue: whether it is paused (and since when, seconds since the epoch), its queued
    and running jobs, and whether any stored job has used it (``known``)."""
    since = stats.paused.get(queue)
    return {
        "queue": queue,
        "paused": since is not None,
        "paused_at": since,
        "queued": stats.queues.get((queue, JobState.QUEUED), 0),
        "running": stats.queues.get((queue, JobState.RUNNING), 0),
        "known": any(q == queue for q, _ in stats.queues),
    }


def paused_summary(stats: Stats) -> list[dict[str, Any]]:
    """The paused queues, by name, each with what waits in it (:func:`queue_state`)."""
    return [queue_state(stats, queue) for queue in sorted(stats.paused)]


def describe(state: dict[str, Any]) -> str:
    """A queue's :func:`queue_state` in words: ``queue 'emails' is paused (3 queued, 1 running:
    the running ones finish)``."""
    counts = f"{state['queued']} queued, {state['running']} running"
    if state["paused"]:
        tail = ": the running ones finish" if state["running"] else ""
        return f"queue {state['queue']!r} is paused ({counts}{tail})"
    return f"queue {state['queue']!r} is running ({counts})"
