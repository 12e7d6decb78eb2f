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
    await asyncio.sleep(seconds)
    calls.append(("sleeper-end", current_job().id))
    return "slept"


def sync_sleeper(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


async def with_options(priority: str, timeout: int, key: str, delay: int) -> list[Any]:
    return [priority, timeout, key, delay]


def register_all(jobs: Jobs) -> None:
    for func in (record, sync_record, flaky, sleeper, sync_sleeper, with_options):
        jobs.register(func)
