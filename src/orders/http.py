"""Request plumbing: the API key, the JSON body, the Idempotency-Key header."""

from __future__ import annotations

import json
from typing import TypeVar, cast

from pydantic import BaseModel, ValidationError
from quart import current_app, request

from .errors import ApiError, validation_details
from .service import EXTENSION_KEY, OrdersState, hash_key, key_matches
from .store import Customer

M = TypeVar("M", bound=BaseModel)

MAX_ID = 2**63 - 1


def orders_state() -> OrdersState:
    state: OrdersState = current_app.extensions[EXTENSION_KEY]
    return state


async def authenticate() -> Customer:
    """The customer behind ``Authorization: Bearer <api key>``, or 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, api_key = header.partition(" ")
    api_key = api_key.strip()
    if scheme.lower() != "bearer" or not api_key:
        raise ApiError(
            401,
            "unauthorized",
            "send your API key as 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    store = orders_state().require_store()
    customer = await store.customer_by_key_hash(hash_key(api_key))
    if customer is None or not key_matches(customer, api_key):
        raise ApiError(
            401, "unauthorized", "the API key is not valid", headers={"WWW-Authenticate": "Bearer"}
        )
    return customer


async def json_body(model: type[M]) -> M:
    """The body, checked: JSON content type (415), size (413), UTF-8 and JSON (400), schema."""
    if request.mimetype != "application/json":
        raise ApiError(
            415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)"
        )
    raw = cast(bytes, await request.get_data(cache=False, as_text=False))
    if not raw:
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the request body is not valid UTF-8") from None
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise ApiError(
            400,
            "invalid_request",
            "the order does not match the schema",
            details=validation_details(exc.errors()),
        ) from None


def idempotency_key() -> str | None:
    """The ``Idempotency-Key`` header: 1 to 128 printable ASCII characters, or absent."""
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    if not 1 <= len(value) <= 128 or not all(" " <= c <= "~" for c in value):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 128 printable ASCII characters",
        )
    return value


def check_id(order_id: int) -> int:
    if not 0 < order_id <= MAX_ID:
        raise ApiError(404, "not_found", "no such order")
    return order_id
