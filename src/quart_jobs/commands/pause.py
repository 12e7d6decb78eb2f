"""``quart-jobs pause QUEUE`` and ``quart-jobs resume QUEUE``: stop and restart the starts of a
queue's jobs in every process (durable; running jobs finish; enqueues are still accepted).
Each prints the queue's new state and what waits in it; ``--json`` prints it as one object.
Exit 0 whether or not the state changed (it says which)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import click

from ..jobs import Jobs
from ..pausing import describe, queue_state
from .output import emit_json, json_option, when
from .session import JobsFactory, run_action


def add_pause_commands(group: click.Group, factory: JobsFactory) -> None:
    """Add ``pause`` and ``resume`` to ``group``, on the jobs of ``factory``."""

    def change(
        queue: str, action: Callable[[Jobs], Awaitable[bool]]
    ) -> tuple[bool, dict[str, Any]]:
        async def run(jobs: Jobs) -> tuple[bool, dict[str, Any]]:
            changed = await action(jobs)
            return changed, queue_state(await jobs.stats(), queue.strip())

        result: tuple[bool, dict[str, Any]] = run_action(factory, run)
        return result

    def report(changed: bool, state: dict[str, Any], as_json: bool, unchanged: str) -> None:
        if as_json:
            emit_json({**state, "changed": changed})
            return
        click.echo(describe(state) if changed else f"{describe(state)}; {unchanged}")
        if not state["known"]:
            click.echo(
                f"note: no job has used queue {state['queue']!r} yet (a typo?); "
                "the state holds for the jobs that come",
                err=True,
            )

    @group.command(help="Stop starting a queue's jobs, in every process, until resume.")
    @click.argument("queue")
    @json_option
    def pause(queue: str, as_json: bool) -> None:
        changed, state = change(queue, lambda jobs: jobs.pause(queue))
        since = when(state["paused_at"])
        report(changed, state, as_json, f"it was paused already, since {since} UTC")

    @group.command(help="Start a paused queue's jobs again (workers are woken at once).")
    @click.argument("queue")
    @json_option
    def resume(queue: str, as_json: bool) -> None:
        changed, state = change(queue, lambda jobs: jobs.resume(queue))
        report(changed, state, as_json, "it was not paused")
