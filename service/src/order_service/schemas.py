"""Request and response bodies of the HTTP API (pydantic, strict: ``"3"`` is not a quantity),
and the tweaks that make the OpenAPI document say exactly what the service does."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from quart_schema import DataSource, OpenAPIProvider


def _integral(value: Any) -> Any:
    """``2.0`` is the integer 2 (JSON Schema's ``integer``); ``"2"``, ``true``, ``2.5`` are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: Accept an integer as JSON Schema means it: a number without a fractional part.
JSON_INT = BeforeValidator(_integral)

Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
OrderStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Item(Strict):
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=1000), JSON_INT]


class OrderRequest(Strict):
    """A new order. The tier is not here: it comes from the customer behind the API key."""

    items: Annotated[list[Item], Field(min_length=1, max_length=100)]
    processing_seconds: Annotated[float, Field(ge=0, le=60, allow_inf_nan=False)] = 0.5
    fail_times: Annotated[int, Field(ge=0, le=10), JSON_INT] = 0


class Order(BaseModel):
    id: int
    customer: str
    tier: Literal["vip", "regular"]
    status: OrderStatus
    items: list[Item]
    processing_seconds: float
    attempts: int
    created_at: str
    started_at: str | None
    completed_at: str | None
    error: str | None
    progress: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="how far its fulfilment got, 0 to 1, while it is processing (reported by "
        "the fulfilment task, written within about a second); null otherwise",
    )


class OrderList(BaseModel):
    orders: list[Order]


class OrderQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: OrderStatus | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50


class OrderWaitQuery(BaseModel):
    """``GET /orders/{id}?wait=S``: answer once the order has ended, or after S seconds."""

    wait: Annotated[float, Field(ge=0, le=30, allow_inf_nan=False)] | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, str]] | None = None


class ErrorBody(BaseModel):
    """An error: ``{"error": {"code", "message"}}``, with ``details`` for schema errors."""

    error: ErrorDetail


IdempotencyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x20-\x7e]+$")
]


class IdempotencyHeaders(BaseModel):
    """Optional ``Idempotency-Key``: a repeat with the same key returns the same order."""

    idempotency_key: IdempotencyKey | None = None


class CreatedHeaders(BaseModel):
    location: str


class RetryHeaders(BaseModel):
    retry_after: str


class UnauthorizedHeaders(BaseModel):
    www_authenticate: str


class OrdersOpenAPI(OpenAPIProvider):
    """quart-schema's provider, corrected: a documented request body is ``required``, and
    response headers go in the response's ``headers`` (quart-schema 0.25 puts them under
    ``content``, where they read as a media type)."""

    def build_request_body(
        self, model: Any, source: DataSource
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        body, definitions = super().build_request_body(model, source)
        body["required"] = True
        return body, definitions

    def build_querystring_parameters(
        self, model: Any
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        params, definitions = super().build_querystring_parameters(model)
        return [_not_null(p) for p in params], definitions

    def build_headers_parameters(self, model: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        params, definitions = super().build_headers_parameters(model)
        return [_not_null(p) for p in params], definitions

    def build_response_object(
        self, model: Any, headers_model: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        response, definitions = super().build_response_object(model, headers_model)
        headers = response["content"].pop("headers", None)
        if headers:
            response["headers"] = {
                name: {**spec, "required": True} for name, spec in headers.items()
            }
        return response, definitions


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


def _not_null(param: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter is absent, never ``null``: document only its non-null form."""
    schema = param["schema"]
    variants = schema.get("anyOf")
    if isinstance(variants, list):
        rest = [v for v in variants if v != {"type": "null"}]
        if len(rest) == 1 and len(rest) < len(variants):
            extra = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
            param = {**param, "schema": {**rest[0], **extra}}
    return param
