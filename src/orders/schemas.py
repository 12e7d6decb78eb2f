"""Request and response bodies of the HTTP API (pydantic, strict: ``"3"`` is not a quantity)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
OrderStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Item(Strict):
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=1000)]


class OrderRequest(Strict):
    """A new order. The tier is not here: it comes from the customer behind the API key."""

    items: Annotated[list[Item], Field(min_length=1, max_length=100)]
    processing_seconds: Annotated[float, Field(ge=0, le=60, allow_inf_nan=False)] = 0.5
    fail_times: Annotated[int, Field(ge=0, le=10)] = 0


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


class OrderList(BaseModel):
    orders: list[Order]


class OrderQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: OrderStatus | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, str]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
