"""The ``quart-jobs`` program: the job commands (:mod:`quart_jobs.commands`) on the jobs that
``--app`` names, or on a store given by ``--database-url``. A Quart app that uses the extension
has the same commands as ``quart jobs …``.

    quart-jobs --database-url sqlite:///var/orders.sqlite3 stats
    quart-jobs --app order_service.app:create_app list --state failed --tier vip --json
    quart-jobs … retry --failed --task orders.process
    quart-jobs … purge --older-than 7d

Exit codes: 0 success; 1 a job was not found, or was not in a state for the action; 2 bad
usage or configuration (an unknown option, an unreachable or unusable database). ``--json``
prints one JSON document on stdout for scripts; messages and progress go to stderr.
"""

from __future__ import annotations

import os

import click

from .commands import JobsFactory, jobs_command_group
from .commands.session import Unusable
from .jobs import Jobs
from .loader import load_jobs


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


def _from_root() -> Jobs:
    """The jobs that the root group's ``--app`` / ``--database-url`` name."""
    loader: JobsFactory = click.get_current_context().find_root().obj
    return loader()


for _name, _command in jobs_command_group(_from_root).commands.items():
    cli.add_command(_command, _name)


def main() -> None:
    cli(prog_name="quart-jobs")
