"""The points where a tracing instrumentation follows jobs: the hooks the library calls, empty
until one is installed (:class:`quart_jobs.otel.JobsInstrumentor` installs OpenTelemetry's).

Nothing here imports a tracing library: without hooks, an enqueue and an attempt each check
one attribute of :data:`HOOKS` and go on.

* :attr:`TracingHooks.enqueue` is called with the jobs an enqueue built, before they are
  written, and whether they wait for other jobs (their attempts then run apart from the
  enqueue: linked to it, not its children); it returns a :class:`Producing` whose
  :attr:`~Producing.jobs` carry the trace context to store (:attr:`NewJob.trace_context`,
  written in the same commit) and whose :meth:`~Producing.end` is called once the commit is
  known (the stored jobs, or the error).
* :attr:`TracingHooks.attempt` is called when a worker starts a job; the :class:`Attempt` it
  returns is entered around the task's run (its span is the current one there), told of a
  failure and of the outcome, and gives the ids the job's log lines carry.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .models import EnqueueResult, Job, NewJob

if TYPE_CHECKING:
    from .backends.base import Outcome


class Producing(Protocol):
    """One enqueue's producer side: its jobs, each carrying its trace context."""

    @property
    def jobs(self) -> list[NewJob]: ...

    def end(self, results: Sequence[EnqueueResult] | None, error: BaseException | None) -> None:
        """The enqueue committed (``results``) or failed (``error``)."""


class Attempt(Protocol):
    """One attempt's consumer side."""

    #: The fields a log line of this attempt carries (``trace_id``, ``span_id``).
    log_fields: dict[str, str]

    def running(self) -> contextlib.AbstractContextManager[object]:
        """Entered around the task's run: the attempt's span is the current one inside."""

    def failed(self, exc: BaseException, error: str) -> None:
        """The task raised ``exc`` (``error``: how the job records it)."""

    def end(self, outcome: Outcome | None) -> None:
        """The attempt ended with ``outcome`` (``None``: the lease was lost)."""


@dataclass(slots=True)
class TracingHooks:
    """The hooks in force (``None``: not traced)."""

    enqueue: Callable[[Sequence[NewJob], bool], Producing] | None = None
    attempt: Callable[[Job], Attempt] | None = None


#: The process's hooks: set by an instrumentation's ``instrument()``, cleared by its
#: ``uninstrument()``.
HOOKS = TracingHooks()


def instrument(setting: str) -> Callable[[], None] | None:
    """Instrument jobs with OpenTelemetry as the ``tracing`` setting says: ``on``, or ``auto``
    when the process set a tracer provider of its own; ``off`` never. Returns the undo of what
    it did, or ``None`` when it did nothing (off, no tracer provider, or an instrumentation
    installed already). ``auto`` imports nothing in a process that never imported
    OpenTelemetry (it cannot have set a tracer provider)."""
    if setting == "off" or HOOKS.enqueue is not None:
        return None
    if setting == "auto" and "opentelemetry.trace" not in sys.modules:
        return None
    try:
        otel = importlib.import_module("quart_jobs.otel")
    except ImportError as exc:
        from .errors import ConfigurationError

        raise ConfigurationError(f"QUART_JOBS_TRACING is on, but {exc}") from None
    if setting == "auto" and not otel.tracer_provider_set():
        return None
    instrumentor = otel.JobsInstrumentor()
    instrumentor.instrument()
    undo: Callable[[], None] = instrumentor.uninstrument
    return undo
