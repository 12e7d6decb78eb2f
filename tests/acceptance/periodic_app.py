"""The tasks of the periodic acceptance test: every process that runs
``quart-jobs --app tests.acceptance.periodic_app:jobs worker`` keeps both schedules. Each run
appends one line (schedule, moment, pid) to ``PERIODIC_LOG``."""

from __future__ import annotations

import os

from quart_jobs import Jobs, WorkerSettings

jobs = Jobs(
    os.environ.get("QUART_JOBS_DATABASE_URL", "memory://"),
    worker_settings=WorkerSettings(poll_interval=0.1, shutdown_timeout=2),
)


def _record(name: str, timestamp: float) -> None:
    with open(os.environ["PERIODIC_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{name} {timestamp!r} {os.getpid()}\n")


@jobs.periodic(every=1, name="every_second")
def every_second(timestamp: float) -> None:
    _record("every_second", timestamp)


@jobs.periodic("0 * * * *", name="hourly")
def hourly(timestamp: float) -> None:
    _record("hourly", timestamp)
