"""The admin JSON API (``/admin/api/...``): statistics, throughput, jobs, retry and cancel.

Every route authenticates first (:mod:`.auth`); POSTs by cookie also pass the CSRF checks.
Errors are ``{"error": {"code", "message"}}`` like the rest of an order-service style API.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError
from quart import Blueprint, Response, jsonify, request
from quart_schema import document_querystring, document_response

from ..errors import JobNotFound, RetryRefused
from ..jobs import Jobs
from ..models import MAX_JOB_ID, Job, JobState, Tier
from ..presenting import dependencies_detail, job_detail, job_summary
from .auth import AdminAuth, AdminError
from .schemas import (
    JobAnswer,
    JobList,
    JobsQuery,
    StatsAnswer,
    ThroughputAnswer,
    ThroughputQuery,
    admin_operation,
    stats_answer,
    throughput_answer,
)

BUCKET_SECONDS = 60


def _query(model: type[JobsQuery] | type[ThroughputQuery]) -> Any:
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'query'}: {e['msg']}" for e in exc.errors()
        )
        raise AdminError(400, "invalid_query", f"bad query parameters: {problems}") from None


def _checked_id(job_id: int) -> int:
    if not 0 < job_id <= MAX_JOB_ID:
        raise AdminError(404, "not_found", f"no job has id {job_id}")
    return job_id


def add_api_routes(bp: Blueprint, jobs: Jobs, auth: AdminAuth) -> None:
    """Mount the JSON API on ``bp`` (its ``url_prefix`` is the admin's)."""

    async def load(job_id: int) -> Job:
        job = await jobs.find(_checked_id(job_id))
        if job is None:
            raise AdminError(404, "not_found", f"no job has id {job_id}")
        return job

    async def answer(job: Job) -> Response:
        detail = job_detail(job)
        detail["dependencies"] = dependencies_detail(await jobs.dependencies(job.id))
        return jsonify({"now": jobs.clock(), "job": detail})

    @bp.get("/api/stats")
    @document_response(StatsAnswer, 200)
    @admin_operation()
    async def admin_stats() -> Response:
        """Jobs by tier and state, totals by state, and the oldest waiting job per tier."""
        await auth.authenticate(request)
        stats = await jobs.stats()
        return jsonify(stats_answer(stats, jobs.clock()))

    @bp.get("/api/throughput")
    @document_querystring(ThroughputQuery)
    @document_response(ThroughputAnswer, 200)
    @admin_operation(400)
    async def admin_throughput() -> Response:
        """Jobs finished per minute (succeeded, failed, cancelled) over the last minutes."""
        await auth.authenticate(request)
        query: ThroughputQuery = _query(ThroughputQuery)
        now = jobs.clock()
        # Whole minutes, the last one still filling: bars keep their place between refreshes.
        first = (math.floor(now / BUCKET_SECONDS) - query.minutes + 1) * BUCKET_SECONDS
        counts = await jobs.operator.finished_counts(first, BUCKET_SECONDS)
        body = throughput_answer(counts, first, query.minutes, BUCKET_SECONDS)
        return jsonify({"now": now, **body})

    @bp.get("/api/jobs")
    @document_querystring(JobsQuery)
    @document_response(JobList, 200)
    @admin_operation(400)
    async def admin_jobs() -> Response:
        """Jobs, newest first, filtered by state, tier and task."""
        await auth.authenticate(request)
        # JobsQuery's schema already bounds state, tier and before_id (answered 400 there).
        query: JobsQuery = _query(JobsQuery)
        found = await jobs.list(
            state=query.state,
            priority=None if query.tier is None else Tier.parse(query.tier),
            task=query.task or None,
            limit=query.limit,
            before_id=query.before_id,
        )
        return jsonify({"now": jobs.clock(), "jobs": [job_summary(j) for j in found]})

    @bp.get("/api/jobs/<qj_id:job_id>")
    @document_response(JobAnswer, 200)
    @admin_operation()
    async def admin_job(job_id: int) -> Response:
        """One job, whole: arguments, attempts, timestamps, error and traceback."""
        await auth.authenticate(request)
        return await answer(await load(job_id))

    @bp.post("/api/jobs/<qj_id:job_id>/retry")
    @document_response(JobAnswer, 200)
    @admin_operation(403, 409)
    async def admin_retry(job_id: int) -> Response:
        """Queue a failed or cancelled job again, with a fresh set of attempts (409 otherwise,
        or when the application refuses: ``retry_refused``, with its reason)."""
        await auth.authenticate(request, write=True)
        job = await load(job_id)
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise AdminError(
                409,
                "conflict",
                f"job {job_id} is {job.state.value}; only failed or cancelled jobs can be retried",
            )
        try:
            job = await jobs.retry(job_id)
        except JobNotFound:
            raise AdminError(404, "not_found", f"no job has id {job_id}") from None
        except RetryRefused as exc:
            raise AdminError(409, "retry_refused", f"job {job_id} not retried: {exc}") from None
        if job.state is not JobState.QUEUED:
            raise AdminError(409, "conflict", f"job {job_id} is {job.state.value}; not retried")
        return await answer(job)

    @bp.post("/api/jobs/<qj_id:job_id>/cancel")
    @document_response(JobAnswer, 200)
    @admin_operation(403, 409)
    async def admin_cancel(job_id: int) -> Response:
        """Cancel a queued job, or ask a running one to stop (it ends ``cancelled``; the answer
        shows ``cancel_requested``). A finished job answers 409."""
        await auth.authenticate(request, write=True)
        job = await load(job_id)
        if job.state.finished:
            raise AdminError(
                409, "conflict", f"job {job_id} is {job.state.value}; it cannot be cancelled"
            )
        try:
            job = await jobs.cancel(job_id)
        except JobNotFound:
            raise AdminError(404, "not_found", f"no job has id {job_id}") from None
        if job.state not in (JobState.CANCELLED, JobState.RUNNING):
            raise AdminError(409, "conflict", f"job {job_id} is {job.state.value}; not cancelled")
        return await answer(job)
