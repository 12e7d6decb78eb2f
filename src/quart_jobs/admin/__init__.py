"""The admin: a dashboard page and the JSON API behind it, as a Quart blueprint.

    jobs = QuartJobs(app)
    register_admin(app, jobs, token=os.environ["ADMIN_TOKEN"])

mounts, under ``/admin``:

* ``GET /admin/``: the dashboard (counts by state and tier, throughput and the waits' p50
  and p99 per tier over the last hour, the owners who waited longest, oldest waiting job
  per tier, running and failed jobs with retry and cancel buttons, queues with pause and resume
  buttons, job details), refreshed
  every 2 seconds; a login form when the visitor has no session yet;
* ``POST /admin/login``, ``POST /admin/logout``: the session (see :mod:`.auth`);
* ``/admin/api/stats``, ``/admin/api/throughput``, ``/admin/api/waits``, ``/admin/api/jobs``,
  ``/admin/api/jobs/<id>``, ``POST /admin/api/jobs/<id>/retry`` and ``…/cancel``,
  ``/admin/api/schedules`` (periodic tasks, their next run), ``POST
  /admin/api/queues/<queue>/pause`` and ``…/resume``: JSON for scripts
  (``Authorization: Bearer <token>``) and for the page (the cookie).

With no token (``None`` or empty) every admin route answers 404 "admin disabled".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from quart import Blueprint, Quart, Response, jsonify
from quart.blueprints import BlueprintSetupState
from quart_schema import HttpSecurityScheme

from ..errors import ConfigurationError
from ..jobs import Jobs
from .api import add_api_routes
from .auth import MIN_TOKEN_LENGTH, AdminAuth, AdminError, TokenSource
from .clients import ClientView, FailureThrottle, parse_networks
from .pages import PAGE_HEADERS, add_page_routes
from .queues import add_queue_routes
from .routing import ID_CONVERTER, DigitsConverter, harden_routing, refuse_bad_hosts
from .schedules import add_schedule_routes
from .waits import add_wait_routes

__all__ = [
    "ID_CONVERTER",
    "AdminAuth",
    "AdminError",
    "DigitsConverter",
    "FailureThrottle",
    "admin_blueprint",
    "harden_routing",
    "refuse_bad_hosts",
    "register_admin",
]

BLUEPRINT_NAME = "quart_jobs_admin"

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    **PAGE_HEADERS,
}


def admin_blueprint(
    jobs: Jobs,
    *,
    token: TokenSource,
    url_prefix: str = "/admin",
    trusted_proxies: str | Iterable[str] = (),
    throttle: FailureThrottle | None = None,
) -> Blueprint:
    """A new admin blueprint for ``jobs``; ``token`` is the admin token (at least 16
    characters), or a callable that returns it (read on every request). ``trusted_proxies``:
    addresses or networks of the reverse proxies whose ``X-Forwarded-Proto`` (the cookie's
    ``Secure`` flag) and ``X-Forwarded-For`` (the client that login throttling counts) are
    believed; from any other peer those headers are ignored. ``throttle``: where failed logins
    are counted (default: this process's memory, 10 a minute per client); several processes
    serving one admin can share one (the order service's ``SharedFailureThrottle``)."""
    if isinstance(token, str) and 0 < len(token) < MIN_TOKEN_LENGTH:
        raise ConfigurationError(
            f"the admin token has {len(token)} characters; use at least {MIN_TOKEN_LENGTH}"
        )
    try:
        networks = parse_networks(trusted_proxies)
    except ValueError as exc:
        raise ConfigurationError(f"trusted_proxies: {exc}") from None
    prefix = "/" + url_prefix.strip("/")
    auth = AdminAuth(
        token, jobs, cookie_path=prefix, clients=ClientView(networks), throttle=throttle
    )
    bp = Blueprint(BLUEPRINT_NAME, __name__, url_prefix=prefix, template_folder="templates")

    @bp.record_once
    def routing(state: BlueprintSetupState) -> None:
        # Before the routes that use the converter are added to the app's map.
        if isinstance(state.app, Quart):
            harden_routing(state.app)  # ids and queue names in URLs; a bad Host is a 400

    @bp.errorhandler(AdminError)
    async def admin_error(exc: AdminError) -> Response:
        response = jsonify({"error": {"code": exc.code, "message": exc.message}})
        response.status_code = exc.status
        response.headers.update(exc.headers)
        return response

    @bp.after_request
    async def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    add_page_routes(bp, auth, prefix)
    add_api_routes(bp, jobs, auth)
    add_schedule_routes(bp, jobs, auth)
    add_queue_routes(bp, jobs, auth)
    add_wait_routes(bp, jobs, auth)
    return bp


def register_admin(
    app: Quart,
    jobs: Jobs,
    *,
    token: TokenSource,
    url_prefix: str = "/admin",
    trusted_proxies: str | Iterable[str] = (),
    throttle: FailureThrottle | None = None,
) -> Blueprint:
    """Mount the admin on ``app`` (the arguments are :func:`admin_blueprint`'s). Call it after
    ``QuartSchema(app)`` so the OpenAPI document gets the ``adminToken`` security scheme."""
    schema: Any = app.extensions.get("QUART_SCHEMA")
    if schema is not None:
        if schema.security_schemes is None:
            schema.security_schemes = {}
        scheme = HttpSecurityScheme(scheme="bearer")
        scheme.description = "The admin token (ADMIN_TOKEN), or the dashboard's session cookie"
        schema.security_schemes.setdefault("adminToken", scheme)
    bp = admin_blueprint(
        jobs,
        token=token,
        url_prefix=url_prefix,
        trusted_proxies=trusted_proxies,
        throttle=throttle,
    )
    app.register_blueprint(bp)
    return bp
