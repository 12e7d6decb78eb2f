"""Hostile input through the real app lifecycle: every bad request gets the API's JSON error
body and a 4xx, never a 500. One table row per kind of bad input; the regressions that
schemathesis found are at the end."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from order_service.app import create_app
from order_service.config import Settings

from .conftest import order_settings

VIP_KEY = "demo-vip-key"
VIP = {"Authorization": f"Bearer {VIP_KEY}"}
REGULAR = {"Authorization": "Bearer demo-regular-key"}
JSON_CT = {"Content-Type": "application/json"}
ORDER = {"items": [{"sku": "A-1", "quantity": 2}], "processing_seconds": 0}
MAX_BODY = 65536


HOSTILE_SETTINGS: dict[str, Any] = {"embedded_workers": False, "max_body_bytes": MAX_BODY}


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    return order_settings(tmp_path, **{**HOSTILE_SETTINGS, **overrides})


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return HOSTILE_SETTINGS


def order_bytes(**changes: Any) -> bytes:
    return json.dumps({**ORDER, **changes}).encode()


@dataclass(frozen=True)
class Case:
    """One hostile request and the answer it must get."""

    name: str
    method: str
    path: str
    status: int
    code: str | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: {**VIP, **JSON_CT})


def no_auth(**extra: str) -> dict[str, str]:
    return {**JSON_CT, **extra}


def with_auth(value: str) -> dict[str, str]:
    return {**JSON_CT, "Authorization": value}


BODY_CASES = [
    Case("malformed JSON", "POST", "/orders", 400, "invalid_json", b'{"items": ['),
    Case("empty body", "POST", "/orders", 400, "invalid_json", b""),
    Case("whitespace body", "POST", "/orders", 400, "invalid_json", b"  \n "),
    Case("invalid UTF-8", "POST", "/orders", 400, "invalid_json", b'{"items": "\xff\xfe"}'),
    Case("UTF-8 BOM", "POST", "/orders", 400, "invalid_json", b"\xef\xbb\xbf" + order_bytes()),
    Case("lone surrogate escape", "POST", "/orders", 400, None, b'{"items": [{"sku": "\\ud800"}]}'),
    Case("JSON null", "POST", "/orders", 400, "invalid_request", b"null"),
    Case("JSON array", "POST", "/orders", 400, "invalid_request", b"[]"),
    Case("JSON string", "POST", "/orders", 400, "invalid_request", b'"items"'),
    Case("empty object", "POST", "/orders", 400, "invalid_request", b"{}"),
    Case("trailing garbage", "POST", "/orders", 400, "invalid_json", order_bytes() + b"x"),
    Case("deep nesting", "POST", "/orders", 400, None, b"[" * 3000 + b"]" * 3000),
    Case(
        "deep nesting in a field",
        "POST",
        "/orders",
        400,
        None,
        b'{"items": ' + b"[" * 1500 + b"]" * 1500 + b"}",
    ),
    Case(
        "quantity 1e400",
        "POST",
        "/orders",
        400,
        "invalid_request",
        b'{"items": [{"sku": "A", "quantity": 1e400}]}',
    ),
    Case(
        "quantity 10**400",
        "POST",
        "/orders",
        400,
        "invalid_request",
        b'{"items": [{"sku": "A", "quantity": 1' + b"0" * 400 + b"}]}",
    ),
    Case(
        "quantity of 5000 digits",
        "POST",
        "/orders",
        400,
        None,
        b'{"items": [{"sku": "A", "quantity": 1' + b"0" * 5000 + b"}]}",
    ),
    Case(
        "quantity 2.5",
        "POST",
        "/orders",
        400,
        "invalid_request",
        b'{"items": [{"sku": "A", "quantity": 2.5}]}',
    ),
    Case(
        "quantity as string",
        "POST",
        "/orders",
        400,
        "invalid_request",
        b'{"items": [{"sku": "A", "quantity": "2"}]}',
    ),
    Case(
        "quantity true",
        "POST",
        "/orders",
        400,
        "invalid_request",
        b'{"items": [{"sku": "A", "quantity": true}]}',
    ),
    Case(
        "quantity 0",
        "POST",
        "/orders",
        400,
        "invalid_request",
        b'{"items": [{"sku": "A", "quantity": 0}]}',
    ),
    Case(
        "quantity 1001",
        "POST",
        "/orders",
        400,
        "invalid_request",
        b'{"items": [{"sku": "A", "quantity": 1001}]}',
    ),
    Case(
        "processing_seconds NaN",
        "POST",
        "/orders",
        400,
        "invalid_json",
        b'{"items": [{"sku": "A", "quantity": 1}], "processing_seconds": NaN}',
    ),
    Case(
        "processing_seconds Infinity",
        "POST",
        "/orders",
        400,
        "invalid_json",
        b'{"items": [{"sku": "A", "quantity": 1}], "processing_seconds": Infinity}',
    ),
    Case(
        "processing_seconds -Infinity",
        "POST",
        "/orders",
        400,
        "invalid_json",
        b'{"items": [{"sku": "A", "quantity": 1}], "processing_seconds": -Infinity}',
    ),
    Case(
        "processing_seconds 1e400",
        "POST",
        "/orders",
        400,
        "invalid_request",
        b'{"items": [{"sku": "A", "quantity": 1}], "processing_seconds": 1e400}',
    ),
    Case(
        "processing_seconds 61",
        "POST",
        "/orders",
        400,
        "invalid_request",
        order_bytes(processing_seconds=61),
    ),
    Case("fail_times 11", "POST", "/orders", 400, "invalid_request", order_bytes(fail_times=11)),
    Case(
        "duplicate keys",
        "POST",
        "/orders",
        400,
        "invalid_json",
        b'{"items": [{"sku": "A", "quantity": 1}], "items": [{"sku": "B", "quantity": 1}]}',
    ),
    Case(
        "duplicate keys in an item",
        "POST",
        "/orders",
        400,
        "invalid_json",
        b'{"items": [{"sku": "A", "quantity": 1, "quantity": 2}]}',
    ),
    Case("unknown field", "POST", "/orders", 400, "invalid_request", order_bytes(coupon="FREE")),
    Case(
        "unknown item field",
        "POST",
        "/orders",
        400,
        "invalid_request",
        b'{"items": [{"sku": "A", "quantity": 1, "price": 0}]}',
    ),
    Case("tier in the body", "POST", "/orders", 400, "invalid_request", order_bytes(tier="vip")),
    Case(
        "customer in the body",
        "POST",
        "/orders",
        400,
        "invalid_request",
        order_bytes(customer="alice"),
    ),
    Case("no items", "POST", "/orders", 400, "invalid_request", order_bytes(items=[])),
    Case(
        "101 items",
        "POST",
        "/orders",
        400,
        "invalid_request",
        order_bytes(items=[{"sku": "A", "quantity": 1}] * 101),
    ),
    Case(
        "items not a list",
        "POST",
        "/orders",
        400,
        "invalid_request",
        order_bytes(items={"sku": "A", "quantity": 1}),
    ),
    Case(
        "empty sku",
        "POST",
        "/orders",
        400,
        "invalid_request",
        order_bytes(items=[{"sku": "", "quantity": 1}]),
    ),
    Case(
        "sku of 65 characters",
        "POST",
        "/orders",
        400,
        "invalid_request",
        order_bytes(items=[{"sku": "A" * 65, "quantity": 1}]),
    ),
    Case(
        "sku with a space",
        "POST",
        "/orders",
        400,
        "invalid_request",
        order_bytes(items=[{"sku": "A 1", "quantity": 1}]),
    ),
    Case(
        "sku with a trailing newline",
        "POST",
        "/orders",
        400,
        "invalid_request",
        order_bytes(items=[{"sku": "A1\n", "quantity": 1}]),
    ),
    Case(
        "sku non-ASCII",
        "POST",
        "/orders",
        400,
        "invalid_request",
        order_bytes(items=[{"sku": "Ä-1", "quantity": 1}]),
    ),
    Case(
        "sku null byte",
        "POST",
        "/orders",
        400,
        "invalid_request",
        order_bytes(items=[{"sku": "A\u0000", "quantity": 1}]),
    ),
    Case(
        "body over MAX_BODY_BYTES",
        "POST",
        "/orders",
        413,
        "payload_too_large",
        b'{"items": [], "pad": "' + b"x" * MAX_BODY + b'"}',
    ),
]

CONTENT_TYPE_CASES = [
    Case(
        "no content type",
        "POST",
        "/orders",
        415,
        "unsupported_media_type",
        order_bytes(),
        headers=VIP,
    ),
    Case(
        "text/plain",
        "POST",
        "/orders",
        415,
        "unsupported_media_type",
        order_bytes(),
        headers={**VIP, "Content-Type": "text/plain"},
    ),
    Case(
        "form encoded",
        "POST",
        "/orders",
        415,
        "unsupported_media_type",
        b"items=1",
        headers={**VIP, "Content-Type": "application/x-www-form-urlencoded"},
    ),
    Case(
        "json with latin-1 charset",
        "POST",
        "/orders",
        415,
        "unsupported_media_type",
        order_bytes(),
        headers={**VIP, "Content-Type": "application/json; charset=latin-1"},
    ),
    Case(
        "garbage content type",
        "POST",
        "/orders",
        415,
        "unsupported_media_type",
        order_bytes(),
        headers={**VIP, "Content-Type": ";;;=="},
    ),
]

AUTH_CASES = [
    Case("no Authorization", "POST", "/orders", 401, "unauthorized", order_bytes(), no_auth()),
    Case(
        "key without scheme",
        "POST",
        "/orders",
        401,
        "unauthorized",
        order_bytes(),
        with_auth(VIP_KEY),
    ),
    Case(
        "Basic scheme",
        "POST",
        "/orders",
        401,
        "unauthorized",
        order_bytes(),
        with_auth("Basic ZGVtbzpkZW1v"),
    ),
    Case(
        "Bearer without key",
        "POST",
        "/orders",
        401,
        "unauthorized",
        order_bytes(),
        with_auth("Bearer"),
    ),
    Case(
        "Bearer and spaces",
        "POST",
        "/orders",
        401,
        "unauthorized",
        order_bytes(),
        with_auth("Bearer    "),
    ),
    Case(
        "wrong key",
        "POST",
        "/orders",
        401,
        "unauthorized",
        order_bytes(),
        with_auth("Bearer demo-vip-kez"),
    ),
    Case(
        "key with a suffix",
        "POST",
        "/orders",
        401,
        "unauthorized",
        order_bytes(),
        with_auth(f"Bearer {VIP_KEY}x"),
    ),
    Case(
        "two keys",
        "POST",
        "/orders",
        401,
        "unauthorized",
        order_bytes(),
        with_auth(f"Bearer {VIP_KEY} {VIP_KEY}"),
    ),
    Case(
        "non-ASCII key",
        "POST",
        "/orders",
        401,
        "unauthorized",
        order_bytes(),
        with_auth("Bearer d\xe9mo-vip-key\xff"),
    ),
    Case(
        "admin token as a key",
        "GET",
        "/orders",
        401,
        "unauthorized",
        None,
        with_auth("Bearer admin-secret-0123456789"),
    ),
    Case("no auth on GET /orders/1", "GET", "/orders/1", 401, "unauthorized", None, no_auth()),
    Case(
        "no auth on POST /orders/1/cancel",
        "POST",
        "/orders/1/cancel",
        401,
        "unauthorized",
        None,
        no_auth(),
    ),
]

IDEMPOTENCY_CASES = [
    Case(
        "empty Idempotency-Key",
        "POST",
        "/orders",
        400,
        "invalid_idempotency_key",
        order_bytes(),
        {**VIP, **JSON_CT, "Idempotency-Key": ""},
    ),
    Case(
        "129-character Idempotency-Key",
        "POST",
        "/orders",
        400,
        "invalid_idempotency_key",
        order_bytes(),
        {**VIP, **JSON_CT, "Idempotency-Key": "k" * 129},
    ),
    Case(
        "control character in Idempotency-Key",
        "POST",
        "/orders",
        400,
        "invalid_idempotency_key",
        order_bytes(),
        {**VIP, **JSON_CT, "Idempotency-Key": "a\tb"},
    ),
    Case(
        "non-ASCII Idempotency-Key",
        "POST",
        "/orders",
        400,
        "invalid_idempotency_key",
        order_bytes(),
        {**VIP, **JSON_CT, "Idempotency-Key": "cl\xe9"},
    ),
]

PATH_AND_QUERY_CASES = [
    Case("huge id", "GET", "/orders/99999999999999999999999", 404, "not_found"),
    Case("2**63 id", "GET", f"/orders/{2**63}", 404, "not_found"),
    Case("zero id", "GET", "/orders/0", 404, "not_found"),
    Case("negative id", "GET", "/orders/-1", 404, "not_found"),
    Case("text id", "GET", "/orders/abc", 404, "not_found"),
    Case("float id", "GET", "/orders/1.5", 404, "not_found"),
    Case("id of 5000 digits", "GET", "/orders/" + "9" * 5000, 404, "not_found"),
    Case("percent-encoded invalid UTF-8 id", "GET", "/orders/%ff", 404, "not_found"),
    Case("missing order", "GET", "/orders/424242", 404, "not_found"),
    Case("cancel huge id", "POST", "/orders/99999999999999999999999/cancel", 404, "not_found"),
    Case("cancel missing order", "POST", "/orders/424242/cancel", 404, "not_found"),
    Case("unknown route", "GET", "/nope", 404, "not_found"),
    Case("limit=abc", "GET", "/orders?limit=abc", 400, "invalid_request"),
    Case("limit=0", "GET", "/orders?limit=0", 400, "invalid_request"),
    Case("limit=501", "GET", "/orders?limit=501", 400, "invalid_request"),
    Case("limit=10**400", "GET", "/orders?limit=1" + "0" * 400, 400, "invalid_request"),
    Case("limit of 5000 digits", "GET", "/orders?limit=1" + "0" * 5000, 400, "invalid_request"),
    Case("limit=1e3", "GET", "/orders?limit=1e3", 400, "invalid_request"),
    Case("status=nope", "GET", "/orders?status=nope", 400, "invalid_request"),
    Case("status empty", "GET", "/orders?status=", 400, "invalid_request"),
    Case("repeated status", "GET", "/orders?status=queued&status=failed", 400, "invalid_request"),
    Case("repeated limit", "GET", "/orders?limit=1&limit=2", 400, "invalid_request"),
    Case("unknown query parameter", "GET", "/orders?offset=5", 400, "invalid_request"),
    Case("invalid UTF-8 in the query", "GET", "/orders?status=%ff", 400, "invalid_request"),
]

METHOD_CASES = [
    Case("PUT /orders", "PUT", "/orders", 405, "method_not_allowed", order_bytes()),
    Case("PATCH /orders/1", "PATCH", "/orders/1", 405, "method_not_allowed", order_bytes()),
    Case("POST /orders/1", "POST", "/orders/1", 405, "method_not_allowed", order_bytes()),
    Case("DELETE /orders", "DELETE", "/orders", 405, "method_not_allowed"),
    Case("POST /healthz", "POST", "/healthz", 405, "method_not_allowed"),
]

ALL_CASES = (
    BODY_CASES
    + CONTENT_TYPE_CASES
    + AUTH_CASES
    + IDEMPOTENCY_CASES
    + PATH_AND_QUERY_CASES
    + METHOD_CASES
)


async def send(client: Client, case: Case) -> Any:
    return await client.open(case.path, method=case.method, data=case.body, headers=case.headers)


def assert_error_body(body: Any) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
async def test_hostile_request_gets_a_json_4xx(client: Client, case: Case) -> None:
    response = await send(client, case)
    assert response.status_code == case.status, await response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = json.loads(await response.get_data(as_text=True))
    assert_error_body(body)
    if case.code is not None:
        assert body["error"]["code"] == case.code, body
    if case.status == 405:
        assert response.headers.get("Allow"), "405 without Allow"
    if case.status == 401:
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
async def test_hostile_request_changes_nothing(client: Client, case: Case) -> None:
    await send(client, case)
    listed = await (await client.get("/orders", headers=VIP)).get_json()
    assert listed == {"orders": []}


async def test_405_lists_the_allowed_methods(client: Client) -> None:
    response = await client.patch("/orders/1", headers=VIP)
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert "GET" in allowed and "DELETE" not in allowed


async def test_chunked_body_over_the_limit_is_413_json(client: Client) -> None:
    """No Content-Length: the limit holds while the body streams in."""
    async with client.request(
        "/orders", method="POST", headers={**VIP, **JSON_CT, "Transfer-Encoding": "chunked"}
    ) as connection:
        for _ in range(4):
            await connection.send(b"x" * (MAX_BODY // 2))
        await connection.send_complete()
    response = await connection.as_response()
    assert response.status_code == 413
    body = await response.get_json()
    assert body["error"]["code"] == "payload_too_large"


async def test_chunked_body_under_the_limit_is_accepted(client: Client) -> None:
    body = order_bytes()
    async with client.request(
        "/orders", method="POST", headers={**VIP, **JSON_CT, "Transfer-Encoding": "chunked"}
    ) as connection:
        await connection.send(body[:10])
        await connection.send(body[10:])
        await connection.send_complete()
    response = await connection.as_response()
    assert response.status_code == 202


async def test_413_names_the_configured_limit(client: Client) -> None:
    response = await client.post("/orders", data=b"x" * (MAX_BODY + 1), headers={**VIP, **JSON_CT})
    assert response.status_code == 413
    assert str(MAX_BODY) in (await response.get_json())["error"]["message"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON; charset=UTF-8"],
)
async def test_json_content_types_are_accepted(client: Client, content_type: str) -> None:
    response = await client.post(
        "/orders", data=order_bytes(), headers={**VIP, "Content-Type": content_type}
    )
    assert response.status_code == 202


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_the_bearer_scheme_is_case_insensitive(client: Client, scheme: str) -> None:
    response = await client.get("/orders", headers={"Authorization": f"{scheme} {VIP_KEY}"})
    assert response.status_code == 200


async def test_the_tier_comes_from_the_customer(client: Client) -> None:
    response = await client.post("/orders", json=ORDER, headers=REGULAR)
    assert response.status_code == 202
    assert (await response.get_json())["tier"] == "regular"


async def test_a_customer_cannot_see_or_cancel_anothers_order(client: Client) -> None:
    created = await (await client.post("/orders", json=ORDER, headers=VIP)).get_json()
    path = f"/orders/{created['id']}"
    assert (await client.get(path, headers=REGULAR)).status_code == 404
    assert (await client.post(f"{path}/cancel", headers=REGULAR)).status_code == 404
    assert (await (await client.get("/orders", headers=REGULAR)).get_json()) == {"orders": []}
    assert (await client.get(path, headers=VIP)).status_code == 200


async def test_api_keys_never_reach_the_logs(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.post("/orders", json=ORDER, headers=VIP)
    await client.get("/orders", headers={"Authorization": "Bearer stolen-key-123"})
    await client.post("/orders", data=b"{", headers={**VIP, **JSON_CT})
    assert VIP_KEY not in caplog.text
    assert "stolen-key-123" not in caplog.text


async def test_admin_api_needs_the_token(client: Client) -> None:
    for headers in ({}, VIP, {"Authorization": "Bearer wrong"}):
        response = await client.get("/admin/api/stats", headers=headers)
        assert response.status_code == 401
        assert_error_body(await response.get_json())
    ok = await client.get(
        "/admin/api/stats", headers={"Authorization": "Bearer admin-secret-0123456789"}
    )
    assert ok.status_code == 200


# --- regressions found by schemathesis (service/tests/acceptance/test_fuzz_openapi.py) -----


async def test_an_integral_float_is_an_integer(client: Client) -> None:
    """ST202: ``157.0`` is an integer for JSON Schema, so the documented schema allows it."""
    body = b'{"items": [{"sku": "LN", "quantity": 157.0}], "fail_times": 1.0}'
    response = await client.post("/orders", data=body, headers={**VIP, **JSON_CT})
    assert response.status_code == 202
    order = await response.get_json()
    assert order["items"] == [{"sku": "LN", "quantity": 157}]


# --- backpressure and rate limits --------------------------------------------------------


async def test_per_customer_queue_cap_answers_429_and_creates_nothing(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, max_queued_per_customer=2))
    async with app.test_app():
        client = app.test_client()
        keyed = {**VIP, "Idempotency-Key": "first"}
        first = await client.post("/orders", json=ORDER, headers=keyed)
        assert (await client.post("/orders", json=ORDER, headers=VIP)).status_code == 202
        full = await client.post("/orders", json=ORDER, headers=VIP)
        assert full.status_code == 429
        assert int(full.headers["Retry-After"]) > 0
        assert (await full.get_json())["error"]["code"] == "too_many_queued"
        replay = await client.post("/orders", json=ORDER, headers=keyed)  # not a new order
        assert replay.status_code == 202
        assert (await replay.get_json())["id"] == (await first.get_json())["id"]
        assert (await client.post("/orders", json=ORDER, headers=REGULAR)).status_code == 202
        listed = await (await client.get("/orders", headers=VIP)).get_json()
        assert len(listed["orders"]) == 2


async def test_global_queue_cap_answers_503_with_retry_after(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, max_queued=1))
    async with app.test_app():
        client = app.test_client()
        assert (await client.post("/orders", json=ORDER, headers=VIP)).status_code == 202
        full = await client.post("/orders", json=ORDER, headers=REGULAR)
        assert full.status_code == 503
        assert full.headers["Retry-After"]
        assert (await full.get_json())["error"]["code"] == "queue_full"
        assert (await (await client.get("/orders", headers=REGULAR)).get_json())["orders"] == []


async def test_rate_limit_per_customer_with_a_larger_vip_allowance(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, rate_limit_per_customer=1.0))
    async with app.test_app():
        client = app.test_client()
        regular = [(await client.get("/orders", headers=REGULAR)).status_code for _ in range(4)]
        assert regular == [200, 200, 429, 429]  # burst 2 x rate
        vip = [(await client.get("/orders", headers=VIP)).status_code for _ in range(6)]
        assert vip == [200, 200, 200, 200, 429, 429]  # VIP: twice the rate and burst
        limited = await client.get("/orders", headers=REGULAR)
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert (await limited.get_json())["error"]["code"] == "rate_limited"
        # Unauthenticated requests never touch a customer's bucket.
        assert (await client.get("/orders")).status_code == 401


async def test_the_openapi_document_says_what_the_service_does(client: Client) -> None:
    doc = await (await client.get("/openapi.json")).get_json()
    post = doc["paths"]["/orders"]["post"]
    assert post["requestBody"]["required"] is True
    assert {"202", "400", "401", "413", "415", "429", "503"} <= set(post["responses"])
    assert "location" in {h.lower() for h in post["responses"]["202"]["headers"]}
    assert "headers" not in post["responses"]["202"]["content"]
    assert [p["name"] for p in post["parameters"]] == ["idempotency-key"]
    quantity = doc["components"]["schemas"]["Item"]["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == (1, 1000)  # not pydantic's "ge"/"le"
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


#: Digits that are not ASCII: Python's int() reads each of them as 1.
UNICODE_ONES = ["\u0661", "\uff11", "\u0967", "\U0001d7cf"]


@pytest.mark.parametrize("one", UNICODE_ONES)
async def test_an_id_in_unicode_digits_names_no_order(client: Client, one: str) -> None:
    placed = await client.post("/orders", json=ORDER, headers=VIP)
    assert (await placed.get_json())["id"] == 1
    for method, path in (("GET", f"/orders/{one}"), ("POST", f"/orders/{one}/cancel")):
        response = await client.open(path, method=method, headers=VIP)
        assert response.status_code == 404, (path, await response.get_data())
        assert_error_body(await response.get_json())
    assert (await (await client.get("/orders/1", headers=VIP)).get_json())["status"] == "queued"


@pytest.mark.parametrize("one", UNICODE_ONES)
async def test_query_numbers_in_unicode_digits_are_400(client: Client, one: str) -> None:
    await client.post("/orders", json=ORDER, headers=VIP)
    for path, name in (("/orders", "limit"), ("/orders/1", "wait")):
        response = await client.get(path, query_string={name: one}, headers=VIP)
        assert response.status_code == 400, (path, await response.get_data())
        assert_error_body(await response.get_json())
