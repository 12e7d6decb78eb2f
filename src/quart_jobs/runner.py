"""Calling a task: async tasks on the event loop, sync tasks on threads the worker can abandon.

A Python thread cannot be stopped from outside. A sync task that overruns its timeout, or that
is still running when the worker shuts down, keeps running its code on its thread; the worker
stops waiting for it at once, so the job's slot is free for the next job. Its thread is then
*abandoned*: never reused, and a daemon thread, so it does not keep the process alive at exit
(``concurrent.futures`` pools, asyncio's default executor among them, are joined at exit,
which is why they are not used here). Threads whose call returned in time are kept idle for
the next sync call, so a steady stream of sync jobs does not start a thread per job.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ResultNotSerializable
from .registry import Task, to_json


@dataclass(frozen=True, slots=True)
class _Call:
    """One sync call handed to a thread, and where its ending goes."""

    func: Callable[[], Any]
    context: contextvars.Context
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[_Ending]


@dataclass(frozen=True, slots=True)
class _Ending:
    """How a sync call ended: its value, or what it raised (any ``BaseException``)."""

    value: Any = None
    error: BaseException | None = None


class _SyncThread:
    """A daemon thread that runs the sync calls handed to it, one at a time."""

    def __init__(self, pool: SyncThreads, name: str) -> None:
        self._pool = pool
        self._inbox: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self.abandoned = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def hand(self, call: _Call | None) -> None:
        self._inbox.put(call)

    def _serve(self) -> None:
        while (call := self._inbox.get()) is not None:
            try:
                ending = _Ending(value=call.context.run(call.func))
            except BaseException as exc:  # any ending is the job's outcome
                ending = _Ending(error=exc)
            _deliver(call, ending)
            if self.abandoned or not self._pool.took_back(self):
                return


def _deliver(call: _Call, ending: _Ending) -> None:
    def settle() -> None:
        if not call.future.done():
            call.future.set_result(ending)

    try:
        call.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody waits for this call any more
        pass


class SyncThreads:
    """Daemon threads for sync tasks: reused when a call returns, abandoned when the caller
    stops waiting (timeout, cancellation, shutdown)."""

    def __init__(self, name_prefix: str = "quart-jobs-sync") -> None:
        self._prefix = name_prefix
        self._numbers = itertools.count(1)
        self._idle: list[_SyncThread] = []
        self._lock = threading.Lock()
        self._closed = False
        #: Threads given up on that may still be running their task's code.
        self.abandoned = 0

    async def run(self, func: Callable[[], Any], context: contextvars.Context) -> Any:
        """``func()`` inside ``context`` on a thread; returns its value or raises what it
        raised. Cancelling the caller abandons the thread at once."""
        loop = asyncio.get_running_loop()
        call = _Call(func, context, loop, loop.create_future())
        thread = self._take()
        thread.hand(call)
        try:
            ending = await call.future
        except BaseException:
            thread.abandoned = True
            with self._lock:
                self.abandoned += 1
            raise
        if ending.error is not None:
            raise ending.error
        return ending.value

    def took_back(self, thread: _SyncThread) -> bool:
        """Called by a thread whose call returned: keep it for the next call (unless closed)."""
        with self._lock:
            if self._closed:
                return False
            self._idle.append(thread)
            return True

    def close(self) -> None:
        """End the idle threads; abandoned ones end when their task returns, if ever."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for thread in idle:
            thread.hand(None)

    def _take(self) -> _SyncThread:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _SyncThread(self, f"{self._prefix}-{next(self._numbers)}")


async def call_task(
    task: Task, args: tuple[Any, ...], kwargs: dict[str, Any], threads: SyncThreads
) -> Any:
    """Run ``task`` with its arguments: awaited on this loop, or on one of ``threads`` with a
    copy of the caller's context variables (``current_job()`` works in sync tasks too)."""
    if task.is_async:
        return await task.func(*args, **kwargs)
    return await threads.run(lambda: task.func(*args, **kwargs), contextvars.copy_context())


def result_json(value: Any) -> str | None:
    """A task's return value as JSON text (``None`` stays ``None``); a value that is not JSON
    raises :class:`ResultNotSerializable`, which fails the attempt."""
    if value is None:
        return None
    try:
        return to_json(value)
    except (TypeError, ValueError) as exc:
        raise ResultNotSerializable(
            f"task result is not JSON: {exc}; return str, int, float, bool, None, or lists "
            "and dicts of them"
        ) from None


def describe(exc: BaseException) -> str:
    """``Type: message`` for a job's error column, whatever ``str(exc)`` does."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the failure
        text = f"<{type(exc).__name__} whose message cannot be read>"
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
