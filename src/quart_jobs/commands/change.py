"""The commands that change jobs or the store: ``retry``, ``cancel``, ``purge`` and
``migrate``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable

import click

from ..errors import JobNotFound, RetryRefused
from ..jobs import Jobs
from ..maintenance.retention import parse_duration
from ..models import FINISHED_STATES, Job, JobState
from ..presenting import job_detail
from .output import JOB_ID, emit_json, json_option, when
from .session import Failed, JobsFactory, run_action


def add_change_commands(group: click.Group, factory: JobsFactory) -> None:
    """Add ``retry``, ``cancel``, ``purge`` and ``migrate`` to ``group``."""

    @group.command(help="Queue a failed or cancelled job again; --failed for every failed job.")
    @click.argument("job_id", type=JOB_ID, required=False)
    @click.option("--failed", "all_failed", is_flag=True, help="Retry every failed job.")
    @click.option("--task", help="With --failed: only jobs of this task.")
    @json_option
    def retry(job_id: int | None, all_failed: bool, task: str | None, as_json: bool) -> None:
        if (job_id is None) == (not all_failed):
            raise click.UsageError("give a JOB_ID or --failed, not both")
        if task is not None and not all_failed:
            raise click.UsageError("--task goes with --failed")
        if job_id is not None:

            async def retry_one(jobs: Jobs) -> tuple[Job, bool]:
                job = await jobs.get(job_id)
                if job.state not in (JobState.FAILED, JobState.CANCELLED):
                    return job, False
                job = await jobs.retry(job_id)
                return job, job.state is JobState.QUEUED

            job, retried = run_action(factory, retry_one)
            if not retried:
                raise Failed(
                    f"job {job_id} is {job.state.value}; only failed or cancelled jobs are retried"
                )
            if as_json:
                emit_json(job_detail(job))
            else:
                click.echo(f"job {job_id} queued again")
            return
        count = run_action(factory, lambda j: retry_failed(j, task, progress=not as_json))
        if as_json:
            emit_json({"retried": count})
        else:
            click.echo(f"{count} failed job{'s' if count != 1 else ''} queued again")

    @group.command(help="Cancel a queued job, or ask a running one to stop.")
    @click.argument("job_id", type=JOB_ID)
    @json_option
    def cancel(job_id: int, as_json: bool) -> None:
        job = run_action(factory, lambda j: j.cancel(job_id))
        if job.state not in (JobState.CANCELLED, JobState.RUNNING):
            raise Failed(f"job {job_id} is {job.state.value}; not cancelled")
        if as_json:
            emit_json(job_detail(job))
        elif job.state is JobState.CANCELLED:
            click.echo(f"job {job_id} cancelled")
        else:
            click.echo(f"job {job_id} is running; asked it to stop")

    @group.command(help="Delete finished jobs older than a duration (never queued or running).")
    @click.option(
        "--older-than",
        "older_than",
        required=True,
        help="Finished longer ago than this: 30m, 12h, 7d, 2w.",
    )
    @click.option(
        "--state",
        "states",
        multiple=True,
        type=click.Choice(sorted(s.value for s in FINISHED_STATES)),
        help="Only jobs in this end state (repeatable; default: all three).",
    )
    @json_option
    def purge(older_than: str, states: tuple[str, ...], as_json: bool) -> None:
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--older-than") from None
        chosen = [JobState(s) for s in states] or sorted(FINISHED_STATES)

        async def run(jobs: Jobs) -> tuple[dict[JobState, int], float]:
            before = jobs.clock() - age
            return await jobs.purge(before, chosen), before

        removed, before = run_action(factory, run)
        counts = {s.value: removed.get(s, 0) for s in sorted(chosen)}
        total = sum(counts.values())
        if as_json:
            emit_json({"removed": total, "by_state": counts, "finished_before": before})
            return
        detail = ", ".join(f"{n} {state}" for state, n in counts.items())
        click.echo(f"removed {total} jobs finished before {when(before)} UTC ({detail})")

    @group.command(help="Create or upgrade the schema, then exit.")
    def migrate() -> None:
        run_action(factory, lambda j: asyncio.sleep(0), creates_store=True)
        click.echo("schema up to date")


async def retry_failed(jobs: Jobs, task: str | None, *, progress: bool) -> int:
    """Queue every failed job (of ``task``) again; the set is taken first, so a job that fails
    again while this runs is not retried twice."""
    ids: list[int] = []
    before: int | None = None
    while True:
        page = await jobs.list(state=JobState.FAILED, task=task, limit=1000, before_id=before)
        ids += [job.id for job in page]
        if len(page) < 1000:
            break
        before = page[-1].id
    if progress:
        with click.progressbar(ids, label="retrying", file=sys.stderr) as bar:
            count = await _retry_each(jobs, bar)
    else:
        count = await _retry_each(jobs, ids)
    return count


async def _retry_each(jobs: Jobs, ids: Iterable[int]) -> int:
    count = 0
    for job_id in ids:
        try:
            job = await jobs.retry(job_id)
        except (JobNotFound, RetryRefused):  # purged meanwhile, or refused by the application
            continue
        if job.state is JobState.QUEUED:
            count += 1
    return count
