"""The order service's HTTP resources: ``/orders`` (place, read, wait for, list, cancel) and
the probes ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import json

from quart import Quart, Response, jsonify
from quart_schema import (
    document_headers,
    document_request,
    document_response,
    security_scheme,
    validate_querystring,
)

from . import orders
from .errors import ApiError
from .http import (
    authenticate,
    check_id,
    idempotency_key,
    json_body,
    orders_state,
    queue_limits,
)
from .orders import IdempotencyKeyReused, NewOrder, OrderNotCancellable
from .orders import cancel as cancel_in_tx
from .orders import place as place_in_tx
from .readiness import Readiness
from .schemas import (
    CreatedHeaders,
    ErrorBody,
    Health,
    IdempotencyHeaders,
    Order,
    OrderList,
    OrderQuery,
    OrderRequest,
    OrderWaitQuery,
    RetryHeaders,
    UnauthorizedHeaders,
)
from .service import (
    STOPPING_KEY,
    order_json,
    wait_for_end,
)


def is_unique_violation(exc: BaseException) -> bool:
    """A unique constraint refused an insert (SQLite's IntegrityError, psycopg's
    UniqueViolation): for orders, the same Idempotency-Key placed at the same moment."""
    return type(exc).__name__ in ("IntegrityError", "UniqueViolation")


def register_routes(app: Quart, readiness: Readiness) -> None:
    @app.post("/orders")
    @document_request(OrderRequest)
    @document_headers(IdempotencyHeaders)
    @document_response(Order, 202, CreatedHeaders)
    @document_response(ErrorBody, 400)
    @document_response(ErrorBody, 401, UnauthorizedHeaders)
    @document_response(ErrorBody, 413)
    @document_response(ErrorBody, 415)
    @document_response(ErrorBody, 422)
    @document_response(ErrorBody, 429, RetryHeaders)
    @document_response(ErrorBody, 503, RetryHeaders)
    async def place_order() -> Response:
        """Place an order; answered 202 once the order and its job are committed to disk, in
        one transaction. A repeat with the same ``Idempotency-Key`` returns the same order
        (``Idempotent-Replayed: true``); the same key with another body is a 422."""
        customer = await authenticate()
        key = idempotency_key()
        body = await json_body(OrderRequest)
        state = orders_state()
        new = NewOrder(
            customer=customer.name,
            tier=customer.tier,
            items=[item.model_dump() for item in body.items],
            processing_seconds=body.processing_seconds,
            fail_times=body.fail_times,
            idempotency_key=key,
        )
        place = place_in_tx(
            new, state.jobs.clock(), queue_limits(), state.settings.fulfilment_rate_limit
        )
        try:
            try:
                order, created = await state.jobs.transaction(place)
            except Exception as exc:
                if not is_unique_violation(exc):
                    raise
                # The same key, placed concurrently by another process: read it now.
                order, created = await state.jobs.transaction(place)
        except IdempotencyKeyReused:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request; use a new key for a "
                "new order",
            ) from None
        if created:
            readiness.write_succeeded()
        # A Response, not a (body, status, headers) tuple: quart-schema would build a pydantic
        # TypeAdapter for the headers dict on every request. The JSON encoded here, as compact
        # as jsonify's, without its provider's indirections (W3's profile).
        headers = {"Location": f"/orders/{order.id}"}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return Response(
            json.dumps(order_json(order), separators=(",", ":")),
            status=202,
            headers=headers,
            mimetype="application/json",
        )

    @app.get("/orders/<qj_id:order_id>")
    @validate_querystring(OrderWaitQuery)
    @document_response(Order, 200)
    @document_response(ErrorBody, 400)
    @document_response(ErrorBody, 401, UnauthorizedHeaders)
    @document_response(ErrorBody, 404)
    @document_response(ErrorBody, 429, RetryHeaders)
    @document_response(ErrorBody, 503, RetryHeaders)
    async def get_order(order_id: int, query_args: OrderWaitQuery) -> Response:
        """One of your orders. With ``wait=S`` (0 to 30 seconds), answered as soon as the order
        is completed, failed or cancelled, or after S seconds with its current state."""
        customer = await authenticate()
        state = orders_state()
        order = await state.require_store().get_order(check_id(order_id))
        if order is None or order.customer != customer.name:
            raise ApiError(404, "not_found", "no such order")
        if query_args.wait and order.status in orders.UNSETTLED and order.job_id is not None:
            stopping = app.extensions.get(STOPPING_KEY)
            if await wait_for_end(state.jobs, order.job_id, query_args.wait, stopping):
                # Its job ended: bring the order along now (as the worker's event does).
                await state.jobs.transaction(orders.sync_with_job([order.id]))
            order = await state.require_store().get_order(order.id) or order
        progress = None
        if order.status == "processing" and order.job_id is not None:
            job = await state.jobs.get(order.job_id)  # what its task reported, written coalesced
            progress = job.progress
        return jsonify(order_json(order, progress))

    @app.get("/orders")
    @validate_querystring(OrderQuery)
    @document_response(OrderList, 200)
    @document_response(ErrorBody, 400)
    @document_response(ErrorBody, 401, UnauthorizedHeaders)
    @document_response(ErrorBody, 429, RetryHeaders)
    @document_response(ErrorBody, 503, RetryHeaders)
    async def list_orders(query_args: OrderQuery) -> Response:
        """Your orders, newest first."""
        customer = await authenticate()
        found = (
            await orders_state()
            .require_store()
            .list_orders(customer.name, query_args.status, query_args.limit)
        )
        return jsonify({"orders": [order_json(order) for order in found]})

    @app.post("/orders/<qj_id:order_id>/cancel")
    @document_response(Order, 200)
    @document_response(ErrorBody, 401, UnauthorizedHeaders)
    @document_response(ErrorBody, 404)
    @document_response(ErrorBody, 409)
    @document_response(ErrorBody, 429, RetryHeaders)
    @document_response(ErrorBody, 503, RetryHeaders)
    async def cancel_order(order_id: int) -> Response:
        """Cancel a queued order (it stays readable, ``cancelled``); 409 once it is processing
        or finished. A cancellation is final."""
        customer = await authenticate()
        jobs = orders_state().jobs
        try:
            order = await jobs.transaction(
                cancel_in_tx(customer.name, check_id(order_id), jobs.clock())
            )
        except OrderNotCancellable as exc:
            raise ApiError(
                409, "conflict", f"the order is {exc.status}; it cannot be cancelled"
            ) from None
        if order is None:
            raise ApiError(404, "not_found", "no such order")
        readiness.write_succeeded()
        return jsonify(order_json(order))

    @app.get("/healthz")
    @security_scheme([])
    @document_response(Health, 200)
    async def healthz() -> Response:
        """The process is up."""
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    @security_scheme([])
    @document_response(Health, 200)
    @document_response(Health, 503)
    async def readyz() -> tuple[Response, int]:
        """The database accepts a write and, with embedded workers, the worker runs."""
        checks = await readiness.checks()
        ready = all(v == "ok" for v in checks.values())
        return jsonify({"status": "ok" if ready else "unavailable", "checks": checks}), (
            200 if ready else 503
        )
