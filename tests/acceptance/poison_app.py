"""Tasks that try to take their worker down, for the acceptance tests' real processes:
``quart-jobs --app tests.acceptance.poison_app:jobs worker`` runs them, and
``python -m tests.acceptance.poison_serve serve`` runs ``orders serve`` with them added."""

from __future__ import annotations

import os
import threading

from quart_jobs import Jobs


class Poison(BaseException):
    """A custom ``BaseException``."""


async def exit_process() -> None:
    raise SystemExit(3)


def interrupt() -> None:
    raise KeyboardInterrupt


async def custom() -> None:
    raise Poison("custom base exception")


def block_forever() -> None:
    threading.Event().wait()


async def done(n: int) -> int:
    return n


POISONS = ("poison.exit_process", "poison.interrupt", "poison.custom")


def register(jobs: Jobs) -> None:
    for func in (exit_process, interrupt, custom, block_forever, done):
        jobs.register(func, name=f"poison.{func.__name__}")


jobs = Jobs(os.environ.get("DATABASE_URL", "memory://"), max_attempts=1)
register(jobs)
