"""Tasks: the functions a job may run, registered by name so any process can run them."""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .backends.base import queue_names
from .errors import (
    ArgumentsNotSerializable,
    PayloadTooLarge,
    TaskNotRegistered,
    TaskRegistrationError,
)
from .models import Tier
from .rate import RateLimit
from .retries import Backoff, RetryOn, check_backoff, check_retry_on

TaskFunc = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Per-task settings; ``None`` means "use the worker's default"."""

    max_attempts: int | None = None
    timeout: float | None = None
    priority: int | None = None
    queue: str | None = None
    #: At most this many of the task's jobs start per period (key: the task's name).
    rate_limit: RateLimit | None = None
    #: Only these exceptions are retried (``None``: every one); see :mod:`quart_jobs.retries`.
    retry_on: RetryOn | None = None
    #: ``attempt -> seconds`` before the next attempt (``None``: the worker's backoff).
    backoff: Backoff | None = None

    def checked(self, task: str) -> TaskOptions:
        """These options, or a :class:`~quart_jobs.errors.ConfigurationError` naming ``task``
        when a retry option is malformed."""
        check_retry_on(task, self.retry_on)
        check_backoff(task, self.backoff)
        return self


@dataclass(frozen=True, slots=True)
class Task:
    """A registered function and its options."""

    name: str
    func: TaskFunc
    options: TaskOptions
    is_async: bool

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly, in this process, now."""
        return self.func(*args, **kwargs)


def task_options(
    max_attempts: int | None = None,
    timeout: float | None = None,
    priority: int | Tier | str | None = None,
    queue: str | None = None,
    rate_limit: str | None = None,
    retry_on: RetryOn | None = None,
    backoff: Backoff | None = None,
) -> TaskOptions:
    """A task's options from what ``@jobs.task(...)`` takes: a tier's name or number, a
    checked queue name, a rate limit's text (``"10/s"``), the retry policy (checked when the
    task is registered, naming it)."""
    return TaskOptions(
        max_attempts=max_attempts,
        timeout=timeout,
        priority=None if priority is None else Tier.parse(priority),
        queue=None if queue is None else queue_names([queue])[0],
        rate_limit=None if rate_limit is None else RateLimit.parse(rate_limit),
        retry_on=retry_on,
        backoff=backoff,
    )


def default_name(func: TaskFunc) -> str:
    """``module.qualname``, with the module's importable name even when it ran as ``__main__``."""
    module = func.__module__
    if module == "__main__":
        module = main_module_name(getattr(func, "__globals__", None)) or module
    return f"{module}.{func.__qualname__}"


def main_module_name(namespace: Mapping[str, Any] | None = None) -> str | None:
    """The name under which another process imports the ``__main__`` module (whose globals are
    ``namespace``): ``python -m pkg.tasks`` gives ``pkg.tasks``; ``python tasks.py`` gives
    ``tasks``, or ``pkg.tasks`` when its directory is a package, as Quart's ``--app`` loader
    names it. ``None`` when there is no file (``python -c``, a REPL)."""
    if namespace is None:
        namespace = vars(sys.modules["__main__"])
    spec = namespace.get("__spec__")
    if spec is not None and getattr(spec, "name", None) not in (None, "__main__"):
        return str(spec.name)
    path = namespace.get("__file__")
    if not isinstance(path, str) or not path.endswith(".py"):
        return None
    return module_name_of_file(path)


def module_name_of_file(path: str) -> str:
    """The dotted module name of a ``.py`` file: its stem, prefixed by the packages (directories
    with an ``__init__.py``) that hold it."""
    directory, filename = os.path.split(os.path.realpath(path))
    parts = [] if filename == "__init__.py" else [filename.removesuffix(".py")]
    while os.path.exists(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.append(package)
    return ".".join(reversed(parts))


def _same_definition(a: TaskFunc, b: TaskFunc) -> bool:
    """One ``def`` imported twice (as ``__main__`` and by its name): same file, line and name."""
    code_a, code_b = getattr(a, "__code__", None), getattr(b, "__code__", None)
    return (
        code_a is not None
        and code_b is not None
        and (code_a.co_filename, code_a.co_firstlineno)
        == (code_b.co_filename, code_b.co_firstlineno)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
    )


def _check_registrable(func: TaskFunc) -> None:
    if not callable(func):
        raise TaskRegistrationError(f"{func!r} is not callable")
    qualname = getattr(func, "__qualname__", None)
    if qualname is None or getattr(func, "__module__", None) is None:
        raise TaskRegistrationError(
            f"{func!r} has no module-level name; register a function defined with `def` "
            "at module level"
        )
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise TaskRegistrationError(
            f"{qualname!r} is a lambda or a nested function; another process could not import "
            "it. Define it with `def` at module level and decorate it with @jobs.task"
        )


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def to_json(value: Any) -> str:
    """``value`` as compact JSON text (ASCII: any string survives any store); ``TypeError`` or
    ``ValueError`` (NaN, infinity) when it is not JSON. One encoder for every call (enqueues
    encode two values each); no arguments at all is the common case."""
    if not value and type(value) in (list, dict):
        return "[]" if type(value) is list else "{}"
    return _ENCODER.encode(value)


def dump_json(value: Any, *, what: str, max_bytes: int | None = None) -> str:
    """``value`` as compact JSON text, or a clear error naming ``what`` was not JSON."""
    try:
        text = to_json(value)
    except (TypeError, ValueError) as exc:
        raise ArgumentsNotSerializable(
            f"{what} must be JSON (str, int, float, bool, None, lists and dicts of them): {exc}"
        ) from None
    if max_bytes is not None and len(text) > max_bytes:
        raise PayloadTooLarge(
            f"{what} take {len(text)} bytes as JSON; the limit is {max_bytes}. "
            "Store large data elsewhere and pass a reference"
        )
    return text


class Registry:
    """Names to tasks. Registering the same function twice returns the first registration."""

    def __init__(self) -> None:
        self._by_name: dict[str, Task] = {}
        self._by_func: dict[TaskFunc, Task] = {}

    def register(
        self, func: TaskFunc, *, name: str | None = None, options: TaskOptions | None = None
    ) -> Task:
        _check_registrable(func)
        task_name = name or default_name(func)
        existing = self._by_name.get(task_name)
        if existing is not None:
            if existing.func is func:
                return existing
            if _same_definition(existing.func, func):
                self._by_func[func] = existing
                return existing
            raise TaskRegistrationError(
                f"a different function is already registered as {task_name!r}; pass name=..."
            )
        task = Task(
            name=task_name,
            func=func,
            options=(options or TaskOptions()).checked(task_name),
            is_async=inspect.iscoroutinefunction(func),
        )
        self._by_name[task_name] = task
        self._by_func[func] = task
        return task

    def task(
        self, func: TaskFunc | None = None, /, *, name: str | None, options: TaskOptions
    ) -> Task | Callable[[TaskFunc], Task]:
        """:meth:`register` as a decorator: ``func`` registered now, or without it the function
        that registers one (``@jobs.task`` and ``@jobs.task(...)``)."""

        def register(f: TaskFunc) -> Task:
            return self.register(f, name=name, options=options)

        return register(func) if func is not None else register

    def get(self, name: str) -> Task:
        try:
            return self._by_name[name]
        except KeyError:
            raise TaskNotRegistered(
                f"no task named {name!r} is registered in this process; import the module that "
                "defines it (decorated with @jobs.task) before starting the worker"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def queues(self, default: str) -> set[str]:
        """The queues the registered tasks send their jobs to (``default`` for a task that
        names none)."""
        return {task.options.queue or default for task in self._by_name.values()}

    def resolve(
        self, target: Task | TaskFunc | str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[Task, tuple[Any, ...], dict[str, Any]]:
        """The task and the full arguments for ``target`` called with ``args`` and ``kwargs``.

        ``target`` is a task, a registered function, its name, or a ``functools.partial`` of one.
        """
        if isinstance(target, functools.partial):
            task, inner_args, inner_kwargs = self.resolve(target.func, target.args, target.keywords)
            return task, inner_args + tuple(args), {**inner_kwargs, **kwargs}
        if isinstance(target, Task):
            return self.get(target.name), tuple(args), dict(kwargs)
        if isinstance(target, str):
            return self.get(target), tuple(args), dict(kwargs)
        if not callable(target):
            raise TaskNotRegistered(self._called_not_passed(target))
        found = self._by_func.get(target)
        if found is None:
            label = getattr(target, "__qualname__", repr(target))
            if "<lambda>" in label or "<locals>" in label:
                hint = "define it with `def` at module level and decorate it with @jobs.task"
            else:
                hint = "decorate it with @jobs.task (or call jobs.register(func)) at module level"
            raise TaskNotRegistered(f"{label!r} is not a registered task: {hint}")
        return found, tuple(args), dict(kwargs)

    def _called_not_passed(self, value: Any) -> str:
        """Why ``value``, which is not callable, is no task: most often the task was called
        (``enqueue(send(42))``) where it should be passed with its arguments. A coroutine
        object is closed, so Python does not warn that it was never awaited."""
        if inspect.iscoroutine(value):
            code = value.cr_code
            value.close()
            task = next(
                (t for t in self._by_name.values() if getattr(t.func, "__code__", None) is code),
                None,
            )
            name = task.func.__name__ if task is not None else code.co_name
            return (
                f"enqueue got a coroutine, the result of calling {name}(...): pass the task and "
                f"its arguments instead, enqueue({name}, *args, **kwargs), not "
                f"enqueue({name}(*args, **kwargs))"
            )
        return (
            f"{value!r:.80} is not a task but a value: pass the task and its arguments, "
            "enqueue(task, *args, **kwargs), not the result of calling it"
        )
