"""quart-jobs: durable, prioritized background jobs for Quart and asyncio."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .admin import harden_routing, register_admin
from .backends.base import QueueLimits, queue_names
from .backends.database import AppDatabase
from .backends.operator import OperatorStore
from .backends.sqlite.database import SQLiteDatabase
from .builder import Enqueuer
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
    UnknownDependency,
)
from .extension import QuartJobs, get_jobs
from .fairness import vip_weights
from .jobs import Jobs
from .maintenance.retention import parse_retention
from .metrics import register_metrics
from .models import (
    MAX_JOB_ID,
    Dependencies,
    Job,
    JobEvent,
    JobLink,
    JobState,
    Stats,
    Tier,
    Waiting,
    WaitReason,
    Why,
)
from .periodic import Schedule
from .progress import RunningJob
from .rate import RateLimit
from .registry import Task
from .retries import Fail, JobSignal, Retry, RetryPolicy
from .testing import Drained
from .transaction import Transaction, TransactionEnqueuer
from .worker import Worker, WorkerSettings, current_job
from .workflows import Group, Step, step

if TYPE_CHECKING:  # imported on first use: it needs the ``postgres`` extra (psycopg)
    from .backends.postgres.database import PostgresDatabase

__all__ = [
    "MAX_JOB_ID",
    "AppDatabase",
    "ArgumentsNotSerializable",
    "BackendUnavailable",
    "ConfigurationError",
    "Dependencies",
    "Drained",
    "Enqueuer",
    "Fail",
    "Group",
    "Job",
    "JobEvent",
    "JobLink",
    "JobNotFound",
    "JobSignal",
    "JobState",
    "Jobs",
    "JobsError",
    "OperatorStore",
    "PayloadTooLarge",
    "PostgresDatabase",
    "QuartJobs",
    "QueueFull",
    "QueueLimits",
    "RateLimit",
    "ResultNotSerializable",
    "Retry",
    "RetryPolicy",
    "RetryRefused",
    "RunningJob",
    "SQLiteDatabase",
    "Schedule",
    "SchemaTooNew",
    "Stats",
    "Step",
    "Task",
    "TaskNotRegistered",
    "TaskRegistrationError",
    "Tier",
    "Transaction",
    "TransactionEnqueuer",
    "UnknownDependency",
    "WaitReason",
    "Waiting",
    "Why",
    "Worker",
    "WorkerSettings",
    "current_job",
    "get_jobs",
    "harden_routing",
    "parse_retention",
    "queue_names",
    "register_admin",
    "register_metrics",
    "step",
    "vip_weights",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresDatabase":
        from .backends.postgres.database import PostgresDatabase

        return PostgresDatabase
    raise AttributeError(f"module 'quart_jobs' has no attribute {name!r}")
