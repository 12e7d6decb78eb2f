"""quart-jobs: durable, prioritized background jobs for Quart and asyncio."""

from __future__ import annotations

from .errors import (
    ArgumentsNotSerializable,
    BackendUnavailable,
    ConfigurationError,
    JobNotFound,
    JobsError,
    PayloadTooLarge,
    QueueFull,
    ResultNotSerializable,
    RetryRefused,
    SchemaTooNew,
    TaskNotRegistered,
    TaskRegistrationError,
)
from .extension import QuartJobs, get_jobs
from .jobs import Jobs
from .models import Job, JobState, Stats, Tier
from .periodic import Schedule
from .policy import RetryPolicy
from .registry import Task
from .testing import Drained
from .transaction import Transaction
from .worker import Worker, WorkerSettings, current_job

__all__ = [
    "ArgumentsNotSerializable",
    "BackendUnavailable",
    "ConfigurationError",
    "Drained",
    "Job",
    "JobNotFound",
    "JobState",
    "Jobs",
    "JobsError",
    "PayloadTooLarge",
    "QuartJobs",
    "QueueFull",
    "ResultNotSerializable",
    "RetryPolicy",
    "RetryRefused",
    "Schedule",
    "SchemaTooNew",
    "Stats",
    "Task",
    "TaskNotRegistered",
    "TaskRegistrationError",
    "Tier",
    "Transaction",
    "Worker",
    "WorkerSettings",
    "current_job",
    "get_jobs",
]
