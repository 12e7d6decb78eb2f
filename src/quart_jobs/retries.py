"""Retry policies: what a task may ask (:class:`Retry`, :class:`Fail`) and the one pure rule
that decides, when an attempt raised, whether and when the job runs again
(:func:`after_failure`).

The rules, first match wins:

1. :class:`Fail` ends the job ``failed`` now, whatever attempts remain.
2. :class:`Retry` queues it again after ``delay`` seconds if attempts remain (it counts as an
   attempt; ``retry_on`` does not apply: the task asked), else the job has given up.
3. A task with ``retry_on`` fails at once on any exception that is not an instance of one of
   those classes (a job's timeout is a ``TimeoutError``, judged like any other).
4. Attempts remain: the task's ``backoff(attempt)`` seconds later (the worker's exponential
   backoff when the task has none, or when its backoff raises or returns a negative or
   non-finite number: the decision then carries a warning for the worker to log). Else the
   job has given up.

A lost worker is no exception of the task: lease expiry queues the job again up to its
``max_attempts`` whatever the task's policy (the store does it, see ``RECOVER_EXPIRED``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .current import current_job
from .errors import ConfigurationError
from .models import Why

#: A task's backoff: the number of the attempt that failed (1 for the first) -> seconds.
Backoff = Callable[[int], float]
#: The exception classes a task retries on.
RetryOn = tuple[type[BaseException], ...]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits up to ``base * factor**(n-1)``,
    capped at ``max_delay``, and at least ``min_delay``."""

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    min_delay: float = 0.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
        ceiling = min(self.max_delay, self.base * self.factor ** max(0, attempt - 1))
        draw = (rng or _rng).uniform(0.0, ceiling)
        return max(self.min_delay, draw)


_rng = random.Random()


def next_run_after_failure(
    attempts: int,
    max_attempts: int,
    now: float,
    retry: RetryPolicy,
    rng: random.Random | None = None,
) -> float | None:
    """When a job that just failed its ``attempts``-th attempt runs again, or ``None``: give up."""
    if attempts >= max_attempts:
        return None
    return now + retry.delay(attempts, rng)


class JobSignal(Exception):
    """Raised by a task to tell the worker what to do with its job (not a failure of
    quart-jobs): :class:`Retry` or :class:`Fail`."""


class Retry(JobSignal):
    """Raise it in a task to run the job again ``delay`` seconds from now (``None``: the task's
    backoff). It counts as an attempt: with none left, the job fails."""

    def __init__(self, delay: float | None = None, message: str | None = None) -> None:
        if delay is not None and (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
            or delay < 0
        ):
            raise ValueError(
                f"{_in_task()}Retry(delay={delay!r}): the delay must be a finite number of "
                "seconds, 0 or more (or None for the task's backoff)"
            )
        self.delay = None if delay is None else float(delay)
        self.message = message
        super().__init__(self.describe())

    def describe(self) -> str:
        """``Retry(delay=30)``, ``Retry(delay=30, message='...')``: what the job's error says."""
        parts = [] if self.delay is None else [f"delay={self.delay:g}"]
        if self.message:
            parts.append(f"message={self.message!r}")
        return f"Retry({', '.join(parts)})"

    def __str__(self) -> str:
        return self.describe()


class Fail(JobSignal):
    """Raise it in a task to end the job ``failed`` now, however many attempts remain."""

    def __init__(self, message: str = "") -> None:
        self.message = message
        super().__init__(message)


def _in_task() -> str:
    """``task 'name': `` when called inside a running task, else nothing."""
    try:
        return f"task {current_job().task!r}: "
    except Exception:
        return ""


@dataclass(frozen=True, slots=True)
class Decision:
    """What :func:`after_failure` decided: run again at ``run_at`` (``None``: the job ends
    ``failed``), why, and a warning for the worker to log (a broken backoff) or ``None``."""

    run_at: float | None
    why: Why
    warning: str | None = None


def after_failure(
    exc: BaseException,
    attempts: int,
    max_attempts: int,
    now: float,
    *,
    retry_on: RetryOn | None = None,
    backoff: Backoff | None = None,
    default: RetryPolicy | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """Decide the fate of a job whose ``attempts``-th attempt (of ``max_attempts``) raised
    ``exc`` at ``now`` (see the module for the rules)."""
    left = attempts < max_attempts
    if isinstance(exc, Fail):
        return Decision(None, Why.FAILED_BY_TASK)
    if isinstance(exc, Retry):
        if not left:
            return Decision(None, Why.GAVE_UP)
        if exc.delay is not None:
            return Decision(now + exc.delay, Why.RETRY_REQUESTED)
        delay, warning = _backoff_delay(attempts, backoff, default, rng)
        return Decision(now + delay, Why.RETRY_REQUESTED, warning)
    if retry_on is not None and not isinstance(exc, retry_on):
        return Decision(None, Why.NOT_RETRYABLE)
    if not left:
        return Decision(None, Why.GAVE_UP)
    delay, warning = _backoff_delay(attempts, backoff, default, rng)
    return Decision(now + delay, Why.BACKOFF, warning)


def _backoff_delay(
    attempt: int,
    backoff: Backoff | None,
    default: RetryPolicy | None,
    rng: random.Random | None,
) -> tuple[float, str | None]:
    """The task's backoff for ``attempt``, or the default one and why it was not used."""
    fallback = (default or RetryPolicy()).delay(attempt, rng)
    if backoff is None:
        return fallback, None
    try:
        value: Any = backoff(attempt)
    except Exception as exc:  # the task's code: it must not stop the retry
        return fallback, f"backoff({attempt}) raised {type(exc).__name__}: {exc}"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        return fallback, f"backoff({attempt}) returned {value!r}, not a finite number ≥ 0"
    return float(value), None


def check_retry_on(task: str, retry_on: object) -> RetryOn | None:
    """``retry_on`` as given to ``@jobs.task``, or a :class:`ConfigurationError` naming the
    task: a tuple of exception classes (``None``: retry every exception)."""
    if retry_on is None:
        return None
    if not isinstance(retry_on, tuple) or not all(
        isinstance(c, type) and issubclass(c, BaseException) for c in retry_on
    ):
        raise ConfigurationError(
            f"task {task!r}: retry_on must be a tuple of exception classes, e.g. "
            f"retry_on=(ConnectionError, TimeoutError), not {retry_on!r}"
        )
    return retry_on


def check_backoff(task: str, backoff: object) -> Backoff | None:
    """``backoff`` as given to ``@jobs.task``, or a :class:`ConfigurationError` naming the
    task: a callable ``attempt -> seconds``."""
    if backoff is not None and not callable(backoff):
        raise ConfigurationError(
            f"task {task!r}: backoff must be a callable taking the attempt number (1 for the "
            f"first) and returning seconds, e.g. backoff=lambda n: 2 ** n, not {backoff!r}"
        )
    return backoff
