"""The admin mounted in the order service: its settings are checked at start-up, and its errors
are the service's JSON errors."""

from __future__ import annotations

import pytest
from quart.typing import TestClientProtocol as Client

from order_service.config import SettingError, Settings

TOKEN = "s3cret-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
UNICODE_ONES = ["\u0661", "\uff11", "\u0967"]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"admin_token": TOKEN, "embedded_workers": False}


@pytest.mark.parametrize("one", UNICODE_ONES)
async def test_in_the_order_service_an_admin_job_id_in_unicode_digits_is_a_json_404(
    client: Client, one: str
) -> None:
    response = await client.get(f"/admin/api/jobs/{one}", headers=ADMIN)
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


@pytest.mark.parametrize("host", ["a" * 64, "a..b", "a" * 64 + ":80"])
async def test_a_bad_host_is_the_services_json_400(client: Client, host: str) -> None:
    for path in ("/healthz", "/admin/api/stats", "/orders/1"):
        response = await client.get(path, headers={**ADMIN, "Host": host})
        assert response.status_code == 400, (path, await response.get_data())
        assert (await response.get_json())["error"]["code"] == "bad_request"


def test_a_short_admin_token_or_a_proxy_by_name_is_refused() -> None:
    with pytest.raises(SettingError, match="ADMIN_TOKEN"):
        Settings.from_env({"ADMIN_TOKEN": "a"})
    with pytest.raises(SettingError, match="TRUSTED_PROXIES"):
        Settings.from_env({"TRUSTED_PROXIES": "10.0.0.1,proxy.example"})
