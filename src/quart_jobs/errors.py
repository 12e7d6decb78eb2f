"""Every failure a user of quart-jobs can meet, each with a message that says what to do.

All of them derive from :class:`JobsError`; a class's docstring is its default message.
"""

from __future__ import annotations


class JobsError(Exception):
    """A quart-jobs error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(JobsError):
    """A setting is invalid; the message names it."""


class TaskNotRegistered(JobsError):
    """The task is not registered; decorate it with @jobs.task at module level."""


class TaskRegistrationError(JobsError):
    """This callable cannot be registered as a task."""


class ArgumentsNotSerializable(JobsError):
    """Job arguments must be JSON (str, int, float, bool, None, lists and dicts of them)."""


class ResultNotSerializable(JobsError):
    """A task's return value must be JSON (str, int, float, bool, None, lists and dicts of them)."""


class PayloadTooLarge(JobsError):
    """The job's arguments are larger than the configured limit."""


class JobNotFound(JobsError):
    """No job has this id."""


class RetryRefused(JobsError):
    """The application refuses to retry this job (a retry guard said why)."""


class UnknownDependency(JobsError):
    """A job named in ``after=`` does not exist (retention may have deleted it); nothing was
    enqueued."""


class DependencyFailed(JobsError):
    """A job this one depends on failed or was cancelled: retry that job first."""


class BackendUnavailable(JobsError):
    """The job store cannot be reached or written; nothing was changed."""


class SchemaTooNew(JobsError):
    """The database was created by a newer quart-jobs; upgrade the code before using it."""


class QueueFull(JobsError):
    """The queue holds as many jobs as it is allowed to; try again later."""

    def __init__(self, message: str | None = None, *, scope: str = "global") -> None:
        super().__init__(message)
        self.scope = scope


#: What a store out of reach raises: a worker's loops log it and wait it out, never crash on it.
STORE_DOWN = (BackendUnavailable, OSError)
