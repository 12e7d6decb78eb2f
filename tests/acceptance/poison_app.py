"""Tasks that try to take their worker down, for the acceptance tests' real processes:
``quart-jobs --app tests.acceptance.poison_app:jobs worker`` runs them (the order service's
tests add them to ``orders serve`` too)."""

from __future__ import annotations

import os
import threading

from quart import current_app, has_app_context

from quart_jobs import Jobs, Transaction, get_jobs


class Poison(BaseException):
    """A custom ``BaseException``."""


async def exit_process() -> None:
    raise SystemExit(3)


def interrupt() -> None:
    raise KeyboardInterrupt


async def custom() -> None:
    raise Poison("custom base exception")


def _exit_in_transaction(tx: Transaction) -> None:
    tx.enqueue("poison.done", -1)  # rolled back with the transaction
    raise SystemExit(3)


async def transaction_exit() -> None:
    """``SystemExit`` from the function of ``jobs.transaction``: on SQLite it runs on the
    process's one writer thread."""
    owner = get_jobs(current_app) if has_app_context() else jobs
    await owner.transaction(_exit_in_transaction)


def block_forever() -> None:
    threading.Event().wait()


async def done(n: int) -> int:
    return n


POISONS = ("poison.exit_process", "poison.interrupt", "poison.custom", "poison.transaction_exit")
#: The error each of :data:`POISONS` leaves on its job.
POISON_ERRORS = [
    "SystemExit: 3",
    "KeyboardInterrupt",
    "Poison: custom base exception",
    "SystemExit: 3",
]


def register(jobs: Jobs) -> None:
    for func in (exit_process, interrupt, custom, transaction_exit, block_forever, done):
        jobs.register(func, name=f"poison.{func.__name__}")


jobs = Jobs(os.environ.get("DATABASE_URL", "memory://"), max_attempts=1)
register(jobs)
