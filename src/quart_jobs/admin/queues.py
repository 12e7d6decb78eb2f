"""``POST /admin/api/queues/<queue>/pause`` and ``…/resume``: the dashboard's Pause and Resume
buttons (and scripts'). Same authentication and CSRF checks as retry and cancel; the answer is
the queue's new state with what waits in it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field
from quart import Blueprint, Response, jsonify, request
from quart_schema import document_response

from ..errors import ConfigurationError
from ..jobs import Jobs
from ..pausing import queue_state
from .auth import AdminAuth, AdminError
from .schemas import admin_operation


class QueueState(BaseModel):
    queue: str
    paused: bool
    paused_at: float | None = Field(description="when it was paused (null: not paused)")
    queued: int = Field(description="queued jobs in it: while paused, they wait")
    running: int = Field(description="running jobs in it: a pause lets them finish")
    known: bool = Field(description="false: no stored job has used this queue (yet)")


class QueueAnswer(QueueState):
    now: float
    changed: bool = Field(description="false: it was paused (resumed) already")


def add_queue_routes(bp: Blueprint, jobs: Jobs, auth: AdminAuth) -> None:
    async def change(queue: str, action: Callable[[str], Awaitable[bool]]) -> Response:
        await auth.authenticate(request, write=True)
        try:
            changed = await action(queue)
        except ConfigurationError as exc:
            raise AdminError(400, "invalid_queue", str(exc)) from None
        state = queue_state(await jobs.stats(), queue.strip())
        return jsonify({"now": jobs.clock(), "changed": changed, **state})

    @bp.post("/api/queues/<qj_queue:queue>/pause")
    @document_response(QueueAnswer, 200)
    @admin_operation(400, 403)
    async def admin_pause_queue(queue: str) -> Response:
        """Stop starting the queue's jobs, in every process, until resumed (running jobs
        finish; enqueues are still accepted). A queue no job has used yet may be paused."""
        return await change(queue, jobs.pause)

    @bp.post("/api/queues/<qj_queue:queue>/resume")
    @document_response(QueueAnswer, 200)
    @admin_operation(400, 403)
    async def admin_resume_queue(queue: str) -> Response:
        """Start the queue's jobs again; workers are woken at once."""
        return await change(queue, jobs.resume)
