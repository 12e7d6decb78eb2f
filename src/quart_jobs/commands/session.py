"""One command's session with the store: load the :class:`Jobs`, open its store, run the
command's action, close; every failure becomes one line and an exit code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from ..errors import JobNotFound, JobsError, RetryRefused
from ..jobs import Jobs

T = TypeVar("T")
JobsFactory = Callable[[], Jobs]


class Failed(click.ClickException):
    """The action could not be done (exit code 1): no such job, or not in a suitable state."""

    exit_code = 1


class Unusable(click.ClickException):
    """The store cannot be used as configured (exit code 2)."""

    exit_code = 2


def run_action(
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
    jobs = load(factory)
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


def load(factory: JobsFactory) -> Jobs:
    """The :class:`Jobs` of the command; a configuration error is exit code 2."""
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
