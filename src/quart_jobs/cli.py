"""The ``quart-jobs`` command line, also mounted as ``quart jobs …`` by the extension.

    quart-jobs --database-url sqlite:///var/orders.sqlite3 stats
    quart-jobs --app order_service.app:create_app list --state failed --tier vip --json
    quart-jobs … retry --failed --task orders.process
    quart-jobs … purge --older-than 7d

Exit codes: 0 success; 1 a job was not found, or was not in a state for the action; 2 bad
usage or configuration (an unknown option, an unreachable or unusable database). ``--json``
prints one JSON document on stdout for scripts; messages and progress go to stderr.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import click

from .backends.base import queue_names
from .errors import ConfigurationError, JobNotFound, JobsError, RetryRefused
from .jobs import Jobs
from .models import FINISHED_STATES, MAX_JOB_ID, Job, JobState, Stats, Tier, job_detail
from .retention import parse_duration
from .unserved import tasks_text, unserved_summary, worker_summary

T = TypeVar("T")
JobsFactory = Callable[[], Jobs]


class Failed(click.ClickException):
    """The action could not be done (exit code 1): no such job, or not in a suitable state."""

    exit_code = 1


class Unusable(click.ClickException):
    """The store cannot be used as configured (exit code 2)."""

    exit_code = 2


def _run(
    factory: JobsFactory,
    action: Callable[[Jobs], Awaitable[T]],
    *,
    creates_store: bool = False,
    reads_only: bool = False,
) -> T:
    """Open the store, run ``action``; every failure becomes one line and an exit code.

    Only a command that ``creates_store`` (``migrate``, ``worker``) may create a SQLite file:
    for the others a missing file is a mistyped URL, not an empty queue. A command that
    ``reads_only`` opens the store alone: not the application's set-up (a Quart app's
    ``on_open`` hooks: its migrations, its seeding), which only a command that changes jobs
    or runs them may need."""
    jobs = _load(factory)
    if not creates_store:
        _require_existing_store(jobs)

    async def main() -> T:
        if reads_only:
            return await _with_store_only(jobs, action)
        async with jobs:  # a QuartJobs opens the store its app configures, runs its hooks
            return await action(jobs)

    try:
        return asyncio.run(main())
    except (JobNotFound, RetryRefused) as exc:
        raise Failed(str(exc)) from None
    except JobsError as exc:
        raise Unusable(str(exc)) from None


async def _with_store_only(jobs: Jobs, action: Callable[[Jobs], Awaitable[T]]) -> T:
    """``action`` on the store of ``jobs`` (configured by the loader), opened and closed here:
    reading needs no worker, no retention and no hook of the application."""
    async with jobs.store_only():
        return await action(jobs)


def _load(factory: JobsFactory) -> Jobs:
    try:
        return factory()
    except JobsError as exc:
        raise Unusable(str(exc)) from None


def _require_existing_store(jobs: Jobs) -> None:
    try:
        missing = jobs.missing_store()
    except JobsError as exc:
        raise Unusable(str(exc)) from None
    if missing:
        raise Unusable(
            f"{missing} does not exist: check the database URL "
            "(`quart-jobs migrate` or a worker creates a new one)"
        )


def log_to_stderr() -> None:
    """Show the library's INFO and WARNING lines on stderr (a job that failed for good, a store
    out of reach), unless the application configured logging itself."""
    root = logging.getLogger()
    library = logging.getLogger("quart_jobs")
    if root.handlers or library.handlers:
        return
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if library.level == logging.NOTSET:
        library.setLevel(logging.INFO)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _age(seconds: float) -> str:
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
    }


def _table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
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


def _echo_serving(stats: Stats, now: float) -> None:
    """The live workers (a table) and one line per unserved (queue, task)."""
    if stats.workers:
        rows = [
            [
                w.name,
                str(w.concurrency),
                "all" if w.queues is None else ",".join(w.queues),
                tasks_text(w.tasks),
                f"{_age(now - w.seen_at)} ago",
            ]
            for w in stats.workers
        ]
        click.echo(f"live workers: {len(stats.workers)}")
        click.echo(_table(["worker", "slots", "queues", "tasks", "last seen"], rows, right={1}))
    else:
        click.echo("live workers: none (start one: quart-jobs worker --app MODULE:APP)")
    for item in stats.unserved:
        click.echo(f"unserved: {item.describe()}")


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, default=str))


#: A job id: a larger one (or 0) is a usage error (exit 2), never asked of the store.
JOB_ID = click.IntRange(1, MAX_JOB_ID)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def jobs_command_group(factory: JobsFactory) -> click.Group:
    """The commands, operating on the :class:`Jobs` that ``factory`` returns."""

    @click.group(help="Inspect and operate the job queue.")
    def group() -> None:
        pass

    @group.command(help="Counts by state and tier, and the oldest waiting job per tier.")
    @json_option
    def stats(as_json: bool) -> None:
        async def read(jobs: Jobs) -> tuple[Stats, float]:
            return await jobs.stats(), jobs.clock()

        result, now = _run(factory, read, reads_only=True)
        data = stats_dict(result, now)
        if as_json:
            _emit_json(data)
            return
        states = [s.value for s in JobState]
        ages = data["oldest_waiting_seconds"]
        rows = [
            [tier, *(str(counts[s]) for s in states), _age(ages[tier]) if tier in ages else "-"]
            for tier, counts in data["counts"].items()
        ]
        rows.append(["all", *(str(data["totals"][s]) for s in states), ""])
        headers = ["tier", *states, "oldest waiting"]
        click.echo(_table(headers, rows, right=set(range(1, len(headers)))))
        if data["queues"]:
            queue_rows = [
                [queue, *(str(counts[s]) for s in states)]
                for queue, counts in data["queues"].items()
            ]
            click.echo("")
            click.echo(_table(["queue", *states], queue_rows, right=set(range(1, len(states) + 1))))
        click.echo("")
        _echo_serving(result, now)

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
        found = _run(
            factory,
            lambda j: j.list(
                state=state, priority=priority, task=task, limit=limit, before_id=before_id
            ),
            reads_only=True,
        )
        if as_json:
            _emit_json([job_detail(job) for job in found])
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
        headers = ["id", "state", "tier", "task", "attempts", "enqueued (UTC)", "error"]
        click.echo(_table(headers, rows, right={0}))

    @group.command(help="One job, whole: arguments, attempts, times, error and traceback.")
    @click.argument("job_id", type=JOB_ID)
    @json_option
    def show(job_id: int, as_json: bool) -> None:
        job = _run(factory, lambda j: j.get(job_id), reads_only=True)
        data = job_detail(job)
        if as_json:
            _emit_json(data)
            return
        for key, value in data.items():
            if key.endswith("_at"):
                value = _when(value) + (" UTC" if value is not None else "")
            elif key in ("args", "kwargs", "result"):
                value = json.dumps(value)
            if key != "traceback":
                click.echo(f"{key:>16}: {value if value is not None else '-'}")
        if job.traceback:
            click.echo(job.traceback.rstrip())

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

            job, retried = _run(factory, retry_one)
            if not retried:
                raise Failed(
                    f"job {job_id} is {job.state.value}; only failed or cancelled jobs are retried"
                )
            if as_json:
                _emit_json(job_detail(job))
            else:
                click.echo(f"job {job_id} queued again")
            return
        count = _run(factory, lambda j: retry_failed(j, task, progress=not as_json))
        if as_json:
            _emit_json({"retried": count})
        else:
            click.echo(f"{count} failed job{'s' if count != 1 else ''} queued again")

    @group.command(help="Cancel a queued job, or ask a running one to stop.")
    @click.argument("job_id", type=JOB_ID)
    @json_option
    def cancel(job_id: int, as_json: bool) -> None:
        job = _run(factory, lambda j: j.cancel(job_id))
        if job.state not in (JobState.CANCELLED, JobState.RUNNING):
            raise Failed(f"job {job_id} is {job.state.value}; not cancelled")
        if as_json:
            _emit_json(job_detail(job))
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

        removed, before = _run(factory, run)
        counts = {s.value: removed.get(s, 0) for s in sorted(chosen)}
        total = sum(counts.values())
        if as_json:
            _emit_json({"removed": total, "by_state": counts, "finished_before": before})
            return
        detail = ", ".join(f"{n} {state}" for state, n in counts.items())
        click.echo(f"removed {total} jobs finished before {_when(before)} UTC ({detail})")

    @group.command(help="Create or upgrade the schema, then exit.")
    def migrate() -> None:
        _run(factory, lambda j: asyncio.sleep(0), creates_store=True)
        click.echo("schema up to date")

    @group.command(help="Run a worker until SIGTERM or SIGINT (then drain gracefully).")
    @click.option("--concurrency", type=click.IntRange(min=1), help="Jobs run at once.")
    @click.option("--shutdown-timeout", type=click.FloatRange(min=0), help="Seconds to drain.")
    @click.option(
        "--queues",
        envvar="QUART_JOBS_QUEUES",
        help="Claim only from these queues (comma-separated; default: every queue).",
    )
    @click.option(
        "--burst",
        is_flag=True,
        help="Run the jobs that are ready (and those they enqueue), then exit 0 once none is "
        "ready and none runs; jobs delayed into the future are not waited for. No schedules.",
    )
    def worker(
        concurrency: int | None, shutdown_timeout: float | None, queues: str | None, burst: bool
    ) -> None:
        overrides: dict[str, Any] = {"burst": True} if burst else {}
        if queues:
            try:
                overrides["queues"] = queue_names(queues)
            except ConfigurationError as exc:
                raise click.UsageError(str(exc)) from None
        if concurrency is not None:
            overrides["concurrency"] = concurrency
        if shutdown_timeout is not None:
            overrides["shutdown_timeout"] = shutdown_timeout
        jobs = _load(factory)
        if not jobs.registry.names():
            raise Unusable(
                "no tasks to run: pass --app MODULE:ATTR, the module (or Quart app) that "
                "registers your tasks with @jobs.task"
            )
        log_to_stderr()
        _run(lambda: jobs, lambda j: run_worker_until_signal(j, **overrides), creates_store=True)

    group.add_command(schedules_command(factory))
    return group


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


async def run_worker_until_signal(jobs: Jobs, **overrides: Any) -> None:
    """Run one worker until SIGTERM/SIGINT, then stop it gracefully. A worker that stopped on
    its own (one of its loops failed; the log has the traceback) ends the command, exit 1."""
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
            await worker.run_until(stop)
            if worker.failure is not None:
                raise Failed(f"the worker stopped after an internal failure: {worker.failure!r}")
            if worker.stopped.is_set():  # a burst that is done
                click.echo("no job ready and none running: done", err=True)
            else:
                click.echo("stopping: running jobs get the shutdown timeout", err=True)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


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
            _emit_json(found)
        elif not found:
            click.echo("no periodic tasks are registered")
        else:
            rows = [
                [
                    s["name"],
                    s["schedule"],
                    _when(s["next_run_at"]),
                    _age(s["next_run_at"] - now),
                    s["queue"],
                ]
                for s in found
            ]
            click.echo(_table(["name", "schedule", "next run (UTC)", "in", "queue"], rows))

    return schedules


def _factory_from(app_path: str | None, database_url: str | None) -> JobsFactory:
    def load() -> Jobs:
        if app_path:
            from .loader import load_jobs

            return load_jobs(app_path)
        url = (
            database_url
            or os.environ.get("QUART_JOBS_DATABASE_URL")
            or os.environ.get("DATABASE_URL")
        )
        if not url:
            raise Unusable(
                "give --app MODULE:ATTR (your tasks: needed by worker) or --database-url URL "
                "(or set DATABASE_URL)"
            )
        return Jobs(url)

    return load


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
