"""How a job's record moves on the memory backend, one event at a time, by the transition
table (:data:`~quart_jobs.models.TRANSITIONS`): what the SQL backends' statements do to a row."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from ...models import Job, JobEvent, JobState, Why, transition
from ..base import Outcome


def moved(state: JobState, event: JobEvent) -> JobState:
    """Where :data:`~quart_jobs.models.TRANSITIONS` takes a job; callers only ask for a move
    the table has (anything else is a bug here, not a user's mistake)."""
    to = transition(state, event)
    if to is None:
        raise AssertionError(f"no transition from {state} on {event}")
    return to


def _queued(job: Job, event: JobEvent, **changes: Any) -> Job:
    """``job`` back in the queue, its lease cleared."""
    return replace(
        job,
        state=moved(job.state, event),
        worker=None,
        lease_token=None,
        lease_expires_at=None,
        progress=None,  # the next attempt starts without progress
        progress_message=None,
        **changes,
    )


def requeued_fresh(job: Job, now: float) -> Job:
    return _queued(
        job,
        JobEvent.RETRIED_BY_OPERATOR,
        attempts=0,
        run_at=now,
        finished_at=None,
        cancel_requested=False,
        error=None,
        traceback=None,
        result=None,
        why=None,
    )


def apply_outcome(job: Job, outcome: Outcome, now: float) -> Job:
    event = outcome.event
    if job.cancel_requested and event in (JobEvent.REQUEUED, JobEvent.RETRIED):
        # Cancelled while it ran, after its attempt ended: it ends cancelled, not queued.
        return replace(
            job,
            state=moved(job.state, JobEvent.CANCELLED),
            finished_at=now,
            error=outcome.error if event is JobEvent.RETRIED else job.error,
            traceback=outcome.traceback if event is JobEvent.RETRIED else job.traceback,
            why=Why.CANCELLED,
            cancel_requested=False,
            worker=None,
            lease_token=None,
            lease_expires_at=None,
        )
    if event is JobEvent.REQUEUED:
        return _queued(
            job,
            event,
            attempts=job.attempts - 1 if outcome.refund else job.attempts,
            run_at=job.run_at if outcome.run_at is None else outcome.run_at,
            cancel_requested=False,
        )
    if event is JobEvent.RETRIED:
        return _queued(
            job,
            event,
            run_at=outcome.run_at,
            error=outcome.error,
            traceback=outcome.traceback,
            why=outcome.why,
        )
    return replace(
        job,
        state=moved(job.state, event),
        finished_at=now,
        result=None if outcome.result is None else json.loads(outcome.result),
        error=outcome.error,
        traceback=outcome.traceback,
        why=outcome.stored_why,
        lease_token=None,
        lease_expires_at=None,
    )


def expire(job: Job, now: float) -> Job:
    error = f"lease expired: worker {job.worker} stopped answering"
    if job.attempts >= job.max_attempts:
        return replace(
            job,
            state=moved(job.state, JobEvent.LEASE_EXPIRED_LAST),
            finished_at=now,
            error=error,
            why=Why.LEASE_EXPIRED,
            lease_token=None,
            lease_expires_at=None,
        )
    # The job keeps its place (its run_at): it was already waiting its turn.
    return _queued(job, JobEvent.LEASE_EXPIRED, error=error, why=Why.LEASE_EXPIRED)
