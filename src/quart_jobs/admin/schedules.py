"""``GET /admin/api/schedules``: the periodic tasks of this app, their next run, and the job of
their latest moment (what the dashboard's schedules panel shows)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, Response, jsonify, request
from quart_schema import document_response

from ..jobs import Jobs
from .auth import AdminAuth
from .schemas import admin_operation


class LatestJob(BaseModel):
    id: int
    state: str
    moment: float = Field(description="the scheduled moment this job is for (epoch seconds)")


class ScheduleInfo(BaseModel):
    name: str = Field(description="the task's registered name")
    cron: str | None = Field(description="five cron fields, or null for an interval")
    every: float | None = Field(description="seconds between moments, or null for cron")
    timezone: str
    queue: str
    priority: int | None
    schedule: str = Field(description="the schedule in words, e.g. 'cron */5 * * * * (UTC)'")
    next_run_at: float
    next_run: str = Field(description="next_run_at in ISO 8601, UTC")
    latest: LatestJob | None = Field(
        description="the job of the latest moment that has come, if it exists (still stored)"
    )


class ScheduleList(BaseModel):
    now: float
    schedules: list[ScheduleInfo]


def add_schedule_routes(bp: Blueprint, jobs: Jobs, auth: AdminAuth) -> None:
    @bp.get("/api/schedules")
    @document_response(ScheduleList, 200)
    @admin_operation()
    async def admin_schedules() -> Response:
        """Periodic tasks with their next run and the job of their latest moment."""
        await auth.authenticate(request)
        now = jobs.clock()
        answers: list[dict[str, Any]] = []
        for schedule in jobs.schedules:
            moment = schedule.latest(now)
            job = await jobs.find_by_key(schedule.key(moment))
            latest = None if job is None else {"id": job.id, "state": job.state.value}
            answers.append(
                {
                    **schedule.as_dict(now),
                    "latest": None if latest is None else {**latest, "moment": moment},
                }
            )
        return jsonify({"now": now, "schedules": answers})
