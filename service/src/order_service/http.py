"""Request plumbing: the API key and its rate limit, the JSON body, the Idempotency-Key header,
the queue limits of an order."""

from __future__ import annotations

import hmac
import json
import time
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError
from quart import current_app, request

from quart_jobs import MAX_JOB_ID, QueueLimits

from .errors import ApiError, validation_details
from .ratelimit import RateLimiter
from .service import (
    EXTENSION_KEY,
    KEY_CACHE_MAX,
    KEY_CACHE_SECONDS,
    OrdersState,
    hash_key,
)
from .shared import SharedRateLimiter, group_dir
from .store import Customer

M = TypeVar("M", bound=BaseModel)

LIMITER_KEY = "orders.ratelimit"


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
    key_hash = hash_key(api_key)
    customer = await _customer_for(key_hash)
    if customer is None or not hmac.compare_digest(customer.key_hash, key_hash):
        raise ApiError(
            401, "unauthorized", "the API key is not valid", headers={"WWW-Authenticate": "Bearer"}
        )
    decision = rate_limiter().take(str(customer.id), vip=customer.tier == "vip")
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests for this customer (RATE_LIMIT_PER_CUSTOMER); slow down",
            headers={"Retry-After": str(decision.retry_after)},
        )
    return customer


async def _customer_for(key_hash: str) -> Customer | None:
    """The active customer holding the key of ``key_hash``: from the short-lived cache of valid
    keys, or from the store (only valid keys are cached, so unknown keys cannot fill it)."""
    state = orders_state()
    now = time.monotonic()
    cached = state.key_cache.get(key_hash)
    if cached is not None and cached[0] > now:
        return cached[1]
    customer = await state.require_store().customer_by_key_hash(key_hash)
    if customer is not None:
        if len(state.key_cache) >= KEY_CACHE_MAX:
            state.key_cache.clear()
        state.key_cache[key_hash] = (now + KEY_CACHE_SECONDS, customer)
    else:
        state.key_cache.pop(key_hash, None)
    return customer


def rate_limiter() -> RateLimiter:
    """The app's per-customer limiter, made on first use from ``RATE_LIMIT_PER_CUSTOMER``."""
    limiter = current_app.extensions.get(LIMITER_KEY)
    if limiter is None:
        rate = orders_state().settings.rate_limit_per_customer
        shared = group_dir()
        # A group of web processes shares each customer's bucket.
        limiter = (
            RateLimiter(rate) if shared is None else SharedRateLimiter(shared / "customers", rate)
        )
        current_app.extensions[LIMITER_KEY] = limiter
    assert isinstance(limiter, RateLimiter)
    return limiter


def queue_limits() -> QueueLimits:
    """``MAX_QUEUED`` and ``MAX_QUEUED_PER_CUSTOMER``, checked by the backend at the insert."""
    settings = orders_state().settings
    return QueueLimits(settings.max_queued, settings.max_queued_per_customer)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return obj


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8 without BOM, no NaN/Infinity, no duplicate keys; else a 400."""
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the request body is not valid UTF-8") from None
    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except _DuplicateKey as exc:
        raise ApiError(400, "invalid_json", f"the request body is ambiguous: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the request body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an integer of > 4300 digits
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from None


async def json_body(model: type[M]) -> M:
    """The body, checked: JSON content type (415), size (413), UTF-8 and JSON (400), schema."""
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if request.mimetype != "application/json" or charset not in ("utf-8", "utf8"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as UTF-8 JSON (Content-Type: application/json)",
        )
    raw = cast(bytes, await request.get_data(cache=False, as_text=False))
    data = parse_json(raw)
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise ApiError(
            400,
            "invalid_request",
            "the request body does not match the schema",
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
    if not 0 < order_id <= MAX_JOB_ID:
        raise ApiError(404, "not_found", "no such order")
    return order_id
