"""The ``quart-jobs`` command line, also mounted as ``quart jobs …`` by the extension.

Exit codes: 0 success, 1 a job was not found or not in a state for the action, 2 bad usage or
configuration (click's convention).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import click

from .errors import JobNotFound, JobsError
from .jobs import Jobs
from .models import Job, JobState, Tier

T = TypeVar("T")
JobsFactory = Callable[[], Jobs]


@contextlib.asynccontextmanager
async def opened(jobs: Jobs) -> AsyncIterator[Jobs]:
    from .extension import QuartJobs

    if isinstance(jobs, QuartJobs) and jobs.app is not None and not jobs._opened:
        jobs.configure_from(jobs.app)
    await jobs.open()
    try:
        yield jobs
    finally:
        await jobs.close()


def _run(factory: JobsFactory, action: Callable[[Jobs], Awaitable[T]]) -> T:
    async def main() -> T:
        async with opened(factory()) as jobs:
            return await action(jobs)

    try:
        return asyncio.run(main())
    except JobNotFound as exc:
        raise click.ClickException(str(exc)) from None
    except JobsError as exc:
        raise click.UsageError(str(exc)) from None


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def job_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "task": job.task,
        "tier": job.tier,
        "priority": job.priority,
        "state": job.state.value,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "args": list(job.args),
        "kwargs": dict(job.kwargs),
        "owner": job.owner,
        "key": job.key,
        "enqueued_at": job.enqueued_at,
        "run_at": job.run_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "worker": job.worker,
        "error": job.error,
        "traceback": job.traceback,
        "result": job.result,
    }


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def jobs_command_group(factory: JobsFactory) -> click.Group:
    """The commands, operating on the :class:`Jobs` that ``factory`` returns."""

    @click.group(help="Inspect and operate the job queue.")
    def group() -> None:
        pass

    @group.command(help="Counts by state and tier, and the oldest waiting job per tier.")
    @json_option
    def stats(as_json: bool) -> None:
        result = _run(factory, lambda j: j.stats())
        tiers = sorted({p for _, p in result.counts} | set(result.oldest_queued))
        states = list(JobState)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "counts": {
                            Tier.name_of(p): {s.value: result.count(s, p) for s in states}
                            for p in tiers
                        },
                        "oldest_queued": {
                            Tier.name_of(p): t for p, t in result.oldest_queued.items()
                        },
                    }
                )
            )
            return
        rows = [
            [Tier.name_of(p)]
            + [str(result.count(s, p)) for s in states]
            + [_when(result.oldest_queued.get(p))]
            for p in tiers
        ]
        rows.append(["all"] + [str(result.count(s)) for s in states] + [""])
        click.echo(_table(["tier", *(s.value for s in states), "oldest queued"], rows))

    @group.command("list", help="Jobs, newest first.")
    @click.option("--state", type=click.Choice([s.value for s in JobState]))
    @click.option("--tier", help="vip, regular or an integer priority.")
    @click.option("--task")
    @click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
    @json_option
    def list_(
        state: str | None, tier: str | None, task: str | None, limit: int, as_json: bool
    ) -> None:
        try:
            priority = None if tier is None else Tier.parse(tier)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--tier") from None
        found = _run(
            factory, lambda j: j.list(state=state, priority=priority, task=task, limit=limit)
        )
        if as_json:
            click.echo(json.dumps([job_dict(job) for job in found]))
            return
        rows = [
            [
                str(x.id),
                x.state.value,
                x.tier,
                x.task,
                f"{x.attempts}/{x.max_attempts}",
                _when(x.enqueued_at),
                (x.error or "")[:60],
            ]
            for x in found
        ]
        click.echo(_table(["id", "state", "tier", "task", "attempts", "enqueued", "error"], rows))

    @group.command(help="One job, whole.")
    @click.argument("job_id", type=int)
    @json_option
    def show(job_id: int, as_json: bool) -> None:
        job = _run(factory, lambda j: j.get(job_id))
        data = job_dict(job)
        if as_json:
            click.echo(json.dumps(data))
            return
        for key, value in data.items():
            if key.endswith("_at"):
                value = _when(value)
            if key != "traceback":
                click.echo(f"{key:>12}: {value if value is not None else '-'}")
        if job.traceback:
            click.echo(job.traceback)

    @group.command(help="Queue a failed or cancelled job again; --failed for all failed jobs.")
    @click.argument("job_id", type=int, required=False)
    @click.option("--failed", "all_failed", is_flag=True, help="Retry every failed job.")
    @click.option("--task", help="With --failed: only jobs of this task.")
    def retry(job_id: int | None, all_failed: bool, task: str | None) -> None:
        if (job_id is None) == (not all_failed):
            raise click.UsageError("give a JOB_ID or --failed, not both")
        if job_id is not None:
            job = _run(factory, lambda j: j.retry(job_id))
            if job.state is not JobState.QUEUED:
                raise click.ClickException(f"job {job_id} is {job.state.value}; not retried")
            click.echo(f"job {job_id} queued again")
            return

        async def retry_all(jobs: Jobs) -> int:
            count = 0
            while True:
                batch = await jobs.list(state=JobState.FAILED, task=task, limit=500)
                if not batch:
                    return count
                with click.progressbar(batch, label="retrying", file=sys.stderr) as bar:
                    for job in bar:
                        await jobs.retry(job.id)
                        count += 1

        click.echo(f"{_run(factory, retry_all)} failed jobs queued again")

    @group.command(help="Cancel a queued job, or ask a running one to stop.")
    @click.argument("job_id", type=int)
    def cancel(job_id: int) -> None:
        job = _run(factory, lambda j: j.cancel(job_id))
        if job.state is JobState.CANCELLED:
            click.echo(f"job {job_id} cancelled")
        elif job.state is JobState.RUNNING:
            click.echo(f"job {job_id} is running; asked it to stop")
        else:
            raise click.ClickException(f"job {job_id} is {job.state.value}; not cancelled")

    @group.command(help="Create or upgrade the schema, then exit.")
    def migrate() -> None:
        _run(factory, lambda j: asyncio.sleep(0))
        click.echo("schema up to date")

    @group.command(help="Run a worker until SIGTERM or SIGINT (then drain gracefully).")
    @click.option("--concurrency", type=click.IntRange(min=1), help="Jobs run at once.")
    @click.option("--shutdown-timeout", type=click.FloatRange(min=0), help="Seconds to drain.")
    def worker(concurrency: int | None, shutdown_timeout: float | None) -> None:
        overrides: dict[str, Any] = {}
        if concurrency is not None:
            overrides["concurrency"] = concurrency
        if shutdown_timeout is not None:
            overrides["shutdown_timeout"] = shutdown_timeout
        _run(factory, lambda j: run_worker_until_signal(j, **overrides))

    return group


async def run_worker_until_signal(jobs: Jobs, **overrides: Any) -> None:
    """Run one worker until SIGTERM/SIGINT, then stop it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with jobs.run_worker(**overrides) as worker:
            click.echo(
                f"worker {worker.name} running {', '.join(jobs.registry.names()) or 'no tasks'}",
                err=True,
            )
            await stop.wait()
            click.echo("stopping: running jobs get the shutdown timeout", err=True)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _factory_from(app_path: str | None, database_url: str | None) -> JobsFactory:
    def load() -> Jobs:
        if app_path:
            return load_jobs(app_path)
        url = (
            database_url
            or os.environ.get("QUART_JOBS_DATABASE_URL")
            or os.environ.get("DATABASE_URL")
        )
        if not url:
            raise click.UsageError("give --app MODULE:APP or --database-url (or set DATABASE_URL)")
        return Jobs(url)

    return load


def load_jobs(app_path: str) -> Jobs:
    """A :class:`Jobs` from ``MODULE:NAME``: a Jobs object, or a Quart app (or factory)."""
    from quart.cli import NoAppException, ScriptInfo

    from .extension import get_jobs

    module_name, _, attr = app_path.partition(":")
    if attr:
        import importlib

        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise click.UsageError(f"cannot import {module_name!r}: {exc}") from None
        obj = getattr(module, attr, None)
        if isinstance(obj, Jobs):
            return obj
    try:
        app = ScriptInfo(app_path, set_debug_flag=False).load_app()
    except NoAppException as exc:
        raise click.UsageError(str(exc)) from None
    return get_jobs(app)


class _RootGroup(click.Group):
    pass


@click.group(cls=_RootGroup, invoke_without_command=False)
@click.option("--app", "app_path", envvar="QUART_APP", help="MODULE:APP (a Quart app or a Jobs).")
@click.option("--database-url", help="Use this store directly (no tasks: stats, list, retry, …).")
@click.pass_context
def cli(ctx: click.Context, app_path: str | None, database_url: str | None) -> None:
    """quart-jobs: durable, prioritized background jobs."""
    ctx.obj = _factory_from(app_path, database_url)


def _attach_commands() -> None:
    def factory() -> Jobs:
        ctx = click.get_current_context()
        root = ctx.find_root()
        loader: JobsFactory = root.obj
        return loader()

    for name, command in jobs_command_group(factory).commands.items():
        cli.add_command(command, name)


_attach_commands()


def main() -> None:
    cli(prog_name="quart-jobs")
