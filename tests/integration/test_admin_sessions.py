"""Admin sessions and the admin's defences: server-side logout (also across processes sharing
the store), POST-only logout, Secure behind a declared proxy, login throttling, token length,
no 500 on any header, strict security headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_jobs import QuartJobs
from quart_jobs.admin import register_admin
from quart_jobs.errors import ConfigurationError

from . import admin_app
from .admin_app import TOKEN
from .conftest import admin_url

COOKIE = "quart_jobs_admin"
PROXY = "10.0.0.2"
OPTIONS: dict[str, Any] = {"trusted_proxies": f"{PROXY},192.168.0.0/24"}


@pytest.fixture
def app_options() -> dict[str, Any]:
    return OPTIONS


def peer(address: str) -> dict[str, Any]:
    return {"scope_base": {"client": (address, 50000)}}


def cookie_of(response: Any) -> str:
    header: str = response.headers["Set-Cookie"]
    return header.split(";")[0].split("=", 1)[1]


async def login(client: Client, **kw: Any) -> Any:
    response = await client.post("/admin/login", form={"token": TOKEN}, **kw)
    assert response.status_code == 303
    return response


async def test_after_logout_the_old_cookie_no_longer_works(tmp_path: Path) -> None:
    # Two apps on one database file: two web processes behind one balancer.
    first = admin_app.create_app(admin_url(tmp_path), **OPTIONS)
    second = admin_app.create_app(admin_url(tmp_path), **OPTIONS)
    async with first.test_app(), second.test_app():
        value = cookie_of(await login(first.test_client()))
        anonymous = [app.test_client(use_cookies=False) for app in (first, second)]
        with_cookie = {"Cookie": f"{COOKIE}={value}"}
        for client in anonymous:
            assert (await client.get("/admin/api/stats", headers=with_cookie)).status_code == 200
        out = await anonymous[0].post("/admin/logout", headers=with_cookie)
        assert out.status_code == 303
        for client in anonymous:  # the session is gone in the store, for every process
            assert (await client.get("/admin/api/stats", headers=with_cookie)).status_code == 401
            page = await client.get("/admin/", headers=with_cookie)
            assert page.status_code == 401 and "log in" in (await page.get_data(True)).lower()


async def test_logout_is_post_only(client: Client) -> None:
    await login(client)
    response = await client.get("/admin/logout")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    assert (await client.get("/admin/api/stats")).status_code == 200  # still logged in


async def test_the_cookie_is_secure_behind_a_trusted_proxy_only(client: Client) -> None:
    https = {"X-Forwarded-Proto": "https"}
    trusted = await login(client, headers=https, **peer(PROXY))
    in_net = await login(client, headers=https, **peer("192.168.0.7"))
    for response in (trusted, in_net):
        flags = response.headers["Set-Cookie"]
        assert "; Secure" in flags and "HttpOnly" in flags and "SameSite=Strict" in flags
    # The same header from any other peer is ignored; plain http is never Secure.
    spoofed = await login(client, headers=https, **peer("203.0.113.9"))
    plain = await login(client, **peer(PROXY))
    for response in (spoofed, plain):
        flags = response.headers["Set-Cookie"]
        assert "Secure" not in flags and "HttpOnly" in flags and "SameSite=Strict" in flags


async def test_failed_logins_are_throttled_per_client(client: Client) -> None:
    guesser, other = peer("198.51.100.1"), peer("198.51.100.2")
    for _ in range(10):
        wrong = await client.post("/admin/login", form={"token": "guess"}, **guesser)
        assert wrong.status_code == 401
    blocked = await client.post("/admin/login", form={"token": TOKEN}, **guesser)
    assert blocked.status_code == 429 and 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert "text/html" in blocked.headers["Content-Type"]
    assert "try again" in (await blocked.get_data(True))
    api = await client.get(
        "/admin/api/stats", headers={"Authorization": f"Bearer {TOKEN}"}, **guesser
    )
    assert api.status_code == 429 and int(api.headers["Retry-After"]) >= 1
    assert (await api.get_json())["error"]["code"] == "too_many_attempts"
    await login(client, **other)  # another client is not affected


async def test_a_trusted_proxy_is_not_throttled_for_its_clients(client: Client) -> None:
    for i in range(10):
        forwarded = {"X-Forwarded-For": f"198.51.100.{i}"}
        wrong = await client.post(
            "/admin/login", form={"token": "guess"}, headers=forwarded, **peer(PROXY)
        )
        assert wrong.status_code == 401
    await login(client, headers={"X-Forwarded-For": "198.51.100.99"}, **peer(PROXY))


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://[::1"},
        {"Origin": "http://[zz]:80"},
        {"Origin": "\u00e9\u00e8://x"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "\u00e9"},
        {"Authorization": "Bearer \u00e9\u00e8\u00ff"},
        {"Cookie": f"{COOKIE}=\u00e9.\u00e8"},
        {"X-Forwarded-For": "[::1, not-an-ip, 999.1.1.1"},
        {"X-Forwarded-Proto": "\u00e9"},
    ],
)
async def test_no_header_gives_a_500_before_or_after_login(
    client: Client, headers: dict[str, str]
) -> None:
    before = await client.post(
        "/admin/login", form={"token": TOKEN}, headers=headers, **peer(PROXY)
    )
    assert before.status_code in (303, 401, 403), await before.get_data()
    await login(client)
    for method, path in (
        ("POST", "/admin/api/jobs/1/cancel"),
        ("GET", "/admin/api/stats"),
        ("POST", "/admin/logout"),
        ("GET", "/admin/"),
    ):
        after = await client.open(path, method=method, headers=headers, **peer(PROXY))
        assert after.status_code < 500, (path, headers, await after.get_data())


async def test_admin_responses_send_strict_security_headers(client: Client) -> None:
    await login(client)
    for path in ("/admin/", "/admin/api/stats"):
        response = await client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"]
    page = await (await client.get("/admin/")).get_data(True)
    assert "<script>" not in page and " on" + "click=" not in page  # no inline script


def test_a_short_admin_token_is_refused() -> None:
    app = Quart("t")
    with pytest.raises(ConfigurationError, match="at least 16"):
        register_admin(app, QuartJobs(), token="short")
