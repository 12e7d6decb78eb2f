"""Module-level tasks for the worker tests (tasks must be importable by name)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from quart_jobs import Jobs, current_job

calls: list[tuple[str, Any]] = []
gate = asyncio.Event


async def record(value: Any) -> Any:
    calls.append(("record", value))
    return {"echo": value}


def sync_record(value: Any) -> str:
    calls.append(("sync", (value, threading.current_thread().name)))
    return threading.current_thread().name


async def flaky(fail_times: int) -> int:
    attempt = current_job().attempts
    if attempt <= fail_times:
        raise ValueError(f"attempt {attempt} fails")
    return attempt


async def sleeper(seconds: float) -> str:
    calls.append(("sleeper-start", current_job().id))
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        calls.append(("sleeper-cancelled", current_job().id))
        raise
    calls.append(("sleeper-end", current_job().id))
    return "slept"


def sync_sleeper(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


async def with_options(priority: str, timeout: int, key: str, delay: int) -> list[Any]:
    return [priority, timeout, key, delay]


class Poison(BaseException):
    """A custom ``BaseException``, not an ``Exception``."""


def poison(kind: str) -> BaseException:
    """What a task that must not take its worker down raises, by name."""
    made: dict[str, BaseException] = {
        "SystemExit": SystemExit(3),
        "KeyboardInterrupt": KeyboardInterrupt(),
        "CancelledError": asyncio.CancelledError(),
        "GeneratorExit": GeneratorExit(),
        "Poison": Poison("custom base exception"),
        "TimeoutError": TimeoutError("the upstream took too long"),
    }
    return made[kind]


async def raiser(kind: str) -> None:
    raise poison(kind)


def sync_raiser(kind: str) -> None:
    raise poison(kind)


#: Set at the end of a test that blocks sync threads, so their threads end.
release = threading.Event()


def sync_blocked() -> str:
    calls.append(("blocked", current_job().id))
    release.wait()
    return "released"


def sync_job_id() -> int:
    return current_job().id


async def returns(kind: str) -> Any:
    values: dict[str, Any] = {"set": {1, 2}, "object": object(), "nan": float("nan")}
    return values[kind]


def register_all(jobs: Jobs) -> None:
    for func in (
        record,
        sync_record,
        flaky,
        sleeper,
        sync_sleeper,
        with_options,
        raiser,
        sync_raiser,
        sync_blocked,
        sync_job_id,
        returns,
    ):
        jobs.register(func)
