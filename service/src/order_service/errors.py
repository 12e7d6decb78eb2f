"""Every error the API sends is JSON: ``{"error": {"code", "message"}}``, with a 4xx status.

Registered for: our own :class:`ApiError`, every Werkzeug ``HTTPException`` (404, 405 with its
``Allow`` header, 413 …), quart-schema's validation errors, the job store being unavailable
(503 with ``Retry-After``), a full queue (429 per customer, 503 global, with ``Retry-After``),
job arguments over the library's size limit (413), and, last, any other exception (500,
logged, no details leaked).
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart, Response, current_app, jsonify
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from quart_jobs import ArgumentsNotSerializable, BackendUnavailable, PayloadTooLarge, QueueFull

log = logging.getLogger("orders")

#: Where the app keeps its :class:`~order_service.readiness.Readiness` (``app.extensions``).
READINESS_KEY = "orders_readiness"

#: Seconds a client is told to wait when the queue is full (``Retry-After``).
QUEUE_FULL_RETRY_AFTER = 5


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: list[dict[str, str]] | None = None,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


def validation_details(errors: Any) -> list[dict[str, str]]:
    details = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        details.append({"field": loc or "(body)", "problem": str(err.get("msg", "invalid"))})
    return details


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.details)

    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(exc: RequestSchemaValidationError) -> Response:
        inner = exc.validation_error
        errors = inner.errors() if hasattr(inner, "errors") else []
        return error_response(
            400,
            "invalid_request",
            "the request does not match the schema",
            details=validation_details(errors),
        )

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        headers = {
            k: v
            for k, v in exc.get_headers()
            if k.lower() not in ("content-type", "content-length")
        }
        message = exc.description or exc.name
        if status == 413:
            limit = current_app.config.get("MAX_CONTENT_LENGTH")
            message = f"the request body is larger than {limit} bytes (MAX_BODY_BYTES)"
        return error_response(status, _CODES.get(status, "http_error"), message, headers)

    @app.errorhandler(BackendUnavailable)
    async def store_down(exc: BackendUnavailable) -> Response:
        log.error("job store unavailable: %s", exc)
        readiness = current_app.extensions.get(READINESS_KEY)
        if readiness is not None:
            readiness.write_failed(exc)
        return error_response(
            503,
            "unavailable",
            "the order store cannot accept or read orders right now; nothing was changed, "
            "try again shortly",
            {"Retry-After": "5"},
        )

    @app.errorhandler(QueueFull)
    async def queue_full(exc: QueueFull) -> Response:
        retry = {"Retry-After": str(QUEUE_FULL_RETRY_AFTER)}
        if exc.scope == "owner":
            return error_response(
                429,
                "too_many_queued",
                "you have as many queued orders as allowed (MAX_QUEUED_PER_CUSTOMER); "
                "nothing was created, try again once some have been processed",
                retry,
            )
        log.warning("queue full: %s", exc)
        return error_response(
            503,
            "queue_full",
            "the service has as many queued orders as it accepts (MAX_QUEUED); "
            "nothing was created, try again later",
            retry,
        )

    @app.errorhandler(PayloadTooLarge)
    async def args_too_large(exc: PayloadTooLarge) -> Response:
        return error_response(413, "payload_too_large", str(exc))

    @app.errorhandler(ArgumentsNotSerializable)
    async def args_not_json(exc: ArgumentsNotSerializable) -> Response:
        return error_response(400, "invalid_request", str(exc))

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "an unexpected error occurred; it was logged")
