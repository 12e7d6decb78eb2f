"""The commands that read: ``stats``, ``list``, ``show`` and ``schedules``. They open the store
alone (no worker, no hook of the application) and change nothing."""

from __future__ import annotations

import json

import click

from ..jobs import Jobs
from ..models import Dependencies, Job, JobState, Stats, Tier
from ..pausing import describe
from ..presenting import dependencies_detail, describe_dependencies, job_detail
from .output import (
    JOB_ID,
    age,
    echo_serving,
    echo_waiting,
    emit_json,
    json_option,
    stats_dict,
    table,
    when,
)
from .session import JobsFactory, run_action


def add_inspect_commands(group: click.Group, factory: JobsFactory) -> None:
    """Add ``stats``, ``list``, ``show`` and ``schedules`` to ``group``."""

    @group.command(help="Counts by state and tier, and the oldest waiting job per tier.")
    @json_option
    def stats(as_json: bool) -> None:
        async def read(jobs: Jobs) -> tuple[Stats, float]:
            return await jobs.stats(), jobs.clock()

        result, now = run_action(factory, read, reads_only=True)
        data = stats_dict(result, now)
        if as_json:
            emit_json(data)
            return
        states = [s.value for s in JobState]
        ages = data["oldest_waiting_seconds"]
        rows = [
            [tier, *(str(counts[s]) for s in states), age(ages[tier]) if tier in ages else "-"]
            for tier, counts in data["counts"].items()
        ]
        rows.append(["all", *(str(data["totals"][s]) for s in states), ""])
        headers = ["tier", *states, "oldest waiting"]
        click.echo(table(headers, rows, right=set(range(1, len(headers)))))
        if data["queues"]:
            queue_rows = [
                [queue, *(str(counts[s]) for s in states)]
                for queue, counts in data["queues"].items()
            ]
            click.echo("")
            click.echo(table(["queue", *states], queue_rows, right=set(range(1, len(states) + 1))))
        for state in data["paused"]:
            click.echo(f"paused: {describe(state)}, since {when(state['paused_at'])} UTC")
        click.echo("")
        echo_waiting(result)
        echo_serving(result, now)

    @group.command("list", help="Jobs, newest first.")
    @click.option("--state", type=click.Choice([s.value for s in JobState]))
    @click.option("--tier", help="vip, regular or an integer priority.")
    @click.option("--task", help="Only jobs of this task (its registered name).")
    @click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
    @click.option("--before-id", type=JOB_ID, help="Page: jobs older than this.")
    @json_option
    def list_(
        state: str | None,
        tier: str | None,
        task: str | None,
        limit: int,
        before_id: int | None,
        as_json: bool,
    ) -> None:
        try:
            priority = None if tier is None else Tier.parse(tier)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--tier") from None
        found = run_action(
            factory,
            lambda j: j.list(
                state=state, priority=priority, task=task, limit=limit, before_id=before_id
            ),
            reads_only=True,
        )
        if as_json:
            emit_json([job_detail(job) for job in found])
            return
        rows = [
            [
                str(x.id),
                x.state.value,
                x.tier,
                x.task,
                f"{x.attempts}/{x.max_attempts}",
                when(x.enqueued_at),
                (x.error or "")[:60],
            ]
            for x in found
        ]
        headers = ["id", "state", "tier", "task", "attempts", "enqueued (UTC)", "error"]
        click.echo(table(headers, rows, right={0}))

    @group.command(help="One job, whole: arguments, attempts, times, error and traceback.")
    @click.argument("job_id", type=JOB_ID)
    @json_option
    def show(job_id: int, as_json: bool) -> None:
        async def read(j: Jobs) -> tuple[Job, Dependencies]:
            return await j.get(job_id), await j.dependencies(job_id)

        job, deps = run_action(factory, read, reads_only=True)
        data = job_detail(job)
        if as_json:
            emit_json({**data, "dependencies": dependencies_detail(deps)})
            return
        message = data.pop("progress_message")
        for key, value in data.items():
            if key == "progress" and value is not None:
                value = f"{value:.0%} {message or ''}".rstrip()
            elif key.endswith("_at"):
                value = when(value) + (" UTC" if value is not None else "")
            elif key in ("args", "kwargs", "result"):
                value = json.dumps(value)
            if key != "traceback":
                click.echo(f"{key:>16}: {value if value is not None else '-'}")
        for label, text in describe_dependencies(deps):
            click.echo(f"{label:>16}: {text}")
        if job.traceback:
            click.echo(job.traceback.rstrip())

    group.add_command(schedules_command(factory))


def schedules_command(factory: JobsFactory) -> click.Command:
    """``schedules``: the app's periodic tasks and their next run. The schedules live in the
    application's code, not in the store: it needs ``--app`` and reads no database."""

    @click.command("schedules", help="Periodic tasks and their next run (needs --app).")
    @json_option
    def schedules(as_json: bool) -> None:
        jobs = factory()
        if not jobs.registry.names():
            raise click.UsageError(
                "no tasks are registered: give --app MODULE:APP (the app that declares the "
                "periodic tasks with @jobs.periodic)"
            )
        now = jobs.clock()
        found = [schedule.as_dict(now) for schedule in jobs.schedules]
        if as_json:
            emit_json(found)
        elif not found:
            click.echo("no periodic tasks are registered")
        else:
            rows = [
                [
                    s["name"],
                    s["schedule"],
                    when(s["next_run_at"]),
                    age(s["next_run_at"] - now),
                    s["queue"],
                ]
                for s in found
            ]
            click.echo(table(["name", "schedule", "next run (UTC)", "in", "queue"], rows))

    return schedules
