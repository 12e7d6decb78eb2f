"""The order service: a Quart app whose orders are durable, prioritized jobs.

``create_app(settings)`` builds a fresh app (tests build one per test): its jobs, its store of
orders and customers, the admin and metrics; the HTTP resources are in :mod:`.routes`.
"""

from __future__ import annotations

from typing import Any

from quart import Quart
from quart_schema import (
    QuartSchema,
)

from quart_jobs import (
    Job,
    QuartJobs,
    harden_routing,
    register_admin,
    register_metrics,
    vip_weights,
)

from .config import Settings
from .errors import READINESS_KEY, register_error_handlers
from .orders import TASK
from .readiness import Readiness
from .reconcile import Reconciler, refuse_cancelled_order
from .routes import register_routes
from .schemas import (
    OrdersOpenAPI,
)
from .service import (
    DEMO_CUSTOMERS,
    EXTENSION_KEY,
    OrdersState,
    hash_key,
    process_order,
)
from .shared import SharedFailureThrottle, group_dir
from .store import store_for
from .tracing import trace_requests


def jobs_config(settings: Settings) -> dict[str, Any]:
    return {
        "QUART_JOBS_DATABASE_URL": settings.database_url,
        "QUART_JOBS_EMBEDDED_WORKER": settings.embedded_workers,
        "QUART_JOBS_CONCURRENCY": settings.worker_concurrency,
        "QUART_JOBS_SHUTDOWN_TIMEOUT": settings.shutdown_timeout,
        "QUART_JOBS_MAX_ATTEMPTS": settings.job_max_attempts,
        "QUART_JOBS_WEIGHTS": vip_weights(settings.vip_weight).by_priority,
        "QUART_JOBS_QUEUES": settings.queues or None,
        "QUART_JOBS_LEASE_SECONDS": settings.lease_seconds,
        "QUART_JOBS_POLL_INTERVAL": settings.poll_interval,
        "QUART_JOBS_SQLITE_SYNCHRONOUS": settings.sqlite_synchronous,
        "QUART_JOBS_RETENTION": settings.job_retention,
    }


def create_app(settings: Settings | None = None) -> Quart:
    settings = settings or Settings.from_env()
    app = Quart("orders")
    # Ids in URLs are ASCII digits (werkzeug's int converter takes any Unicode digit), and a
    # Host header that is no host name is a JSON 400 (Quart would answer a 500).
    harden_routing(app)
    app.config.update(jobs_config(settings))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["QUART_SCHEMA_CONVERSION_PREFERENCE"] = "pydantic"
    QuartSchema(
        app,
        info={"title": "quart-jobs order service", "version": "0.1.0"},
        security_schemes={"apiKey": {"type": "http", "scheme": "bearer"}},
        security=[{"apiKey": []}],
        openapi_provider_class=OrdersOpenAPI,
        # The interactive UIs load their scripts from a CDN onto this origin (the admin's):
        # off. The OpenAPI document stays at /openapi.json.
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
    )
    jobs = QuartJobs()
    jobs.register(process_order, name=TASK)
    state = OrdersState(settings=settings, jobs=jobs)
    app.extensions[EXTENSION_KEY] = state

    async def open_store() -> None:
        store = store_for(jobs.database)
        await store.migrate()
        if settings.orders_demo:
            for name, tier, key in DEMO_CUSTOMERS:
                await store.ensure_customer(name, tier, hash_key(key))
        state.store = store
        state.reconciler = Reconciler(jobs, store)

    # Registered once: each open (the CLI's preflight, then serving) makes a new store.
    def on_job_event(event: str, job: Job, elapsed: float | None) -> None:
        if state.reconciler is not None:
            state.reconciler.on_job_event(event, job, elapsed)

    async def retry_guard(job: Job) -> str | None:
        return await refuse_cancelled_order(state.require_store(), job)

    jobs.event_hooks.append(on_job_event)
    jobs.retry_guards.append(retry_guard)

    async def stop_reconciling() -> None:
        if state.reconciler is not None:
            await state.reconciler.stop()

    jobs.on_open.append(open_store)
    app.after_serving(stop_reconciling)  # before the jobs' own after_serving closes the store
    jobs.init_app(app)

    @app.before_serving
    async def start_reconciling() -> None:  # after the jobs' own before_serving opened it
        if state.reconciler is not None:
            state.reconciler.start()

    shared = group_dir()
    register_admin(
        app,
        jobs,
        token=settings.admin_token,
        trusted_proxies=settings.trusted_proxies,
        # A group of web processes counts failed logins together (SPEC: 10 a minute per client).
        throttle=None if shared is None else SharedFailureThrottle(shared / "admin-logins"),
    )
    register_metrics(app, jobs, token=settings.metrics_token)
    register_error_handlers(app)
    readiness = Readiness(jobs, embedded_workers=settings.embedded_workers)
    app.extensions[READINESS_KEY] = readiness
    register_routes(app, readiness)
    trace_requests(app)
    return app
