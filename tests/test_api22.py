"""What API 18-22 clients expect beyond the basic flow: the v22 logout path, Simplified Login,
strict Accept weights, no redirects, distinguished names with a slash, and single-use tokens
under concurrency."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ACCEPT, DEVICE_ID, LiveServer, base_config, totp_now

LOGOUT = "/admin/authentication/logout"


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    config = base_config(tmp_path)
    config["identityProviders"][0]["users"].append({"username": "ops/eu", "password": "ops-pass"})
    return config


def _enrolled_full_token(live: LiveServer, username: str, password: str) -> str:
    token = live.login(username, password)["token"]
    secret = live.initialize(token).json()["secret"]
    mfa = live.otp(token, totp_now(secret, live.clock.now)).json()["token"]
    full: str = live.call("GET", "/admin/authorization", token=mfa).json()["token"]
    return full


def _simple_login(live: LiveServer, provider: str, username: str, password: str) -> httpx.Response:
    body = {"providerName": provider, "username": username, "password": password,
            "deviceId": DEVICE_ID}  # fmt: skip
    return live.call("POST", "/admin/login", json=body)


def test_logout_at_the_v22_path_and_the_v16_alias(live: LiveServer) -> None:
    for path, user in ((LOGOUT, "alice"), ("/admin/logout", "dave")):
        full = _enrolled_full_token(live, user, f"{user}-pass")
        response = live.call("POST", path, token=full)
        assert response.status_code == 204 and response.content == b""
        assert live.call("GET", "/admin/authorization", token=full).status_code == 401
        assert live.call("POST", path, token=full).status_code == 401


def test_simplified_login_gives_a_full_token_to_users_without_mfa(live: LiveServer) -> None:
    response = _simple_login(live, "service", "bob", "bob-pass")
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == {"name": "bob", "needTwoFactorAuth": False,
                            "canAccessAuditLogs": False, "privileges": []}  # fmt: skip
    # it is a full token already: it answers itself at /authorization and lists nothing else
    again = live.call("GET", "/admin/authorization", token=body["token"])
    assert again.status_code == 200 and again.json()["token"] == body["token"]
    admin = _simple_login(live, "service", "root", "root-pass").json()["token"]
    assert live.call("GET", "/admin/otp/seeds", token=admin).status_code == 200


def test_simplified_login_refuses_users_who_owe_mfa(live: LiveServer) -> None:
    response = _simple_login(live, "local", "alice", "alice-pass")
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"id", "message", "reason"} and body["id"] == "authentication failed"
    assert "/admin/authentication" in body["reason"]
    wrong = _simple_login(live, "local", "alice", "nope")
    assert wrong.json()["reason"] == "Invalid username or password."
    assert _simple_login(live, "nowhere", "alice", "x").json()["reason"] == (
        "Unknown identity provider."
    )


def test_simplified_login_is_locked_out_like_authentication(live: LiveServer) -> None:
    reasons = [_simple_login(live, "service", "bob", "guess").json()["reason"] for _ in range(10)]
    assert reasons[-1] == "Too many failed attempts. Try again later."
    assert _simple_login(live, "service", "bob", "bob-pass").status_code == 401
    live.clock.advance(60)
    assert _simple_login(live, "service", "bob", "bob-pass").status_code == 200


@pytest.mark.parametrize(
    "accept",
    [
        "application/vnd.appgate.peer-v22+json; q=0",
        "application/vnd.appgate.peer-v22+json;q=0.000",
        "application/vnd.appgate.peer-v22+json; q=zero",
        "application/vnd.appgate.peer-v21+json;q=0, text/html",
    ],
)
def test_an_accept_range_with_weight_zero_is_refused(live: LiveServer, accept: str) -> None:
    response = live.call("GET", "/admin/identity-providers/names", headers={"Accept": accept})
    assert response.status_code == 406
    assert response.json()["message"].endswith(f"Received: {accept}")


def test_weights_above_zero_are_accepted(live: LiveServer) -> None:
    accept = (
        "application/vnd.appgate.peer-v18+json;q=0, application/vnd.appgate.peer-v20+json;q=0.5"
    )
    response = live.call("GET", "/admin/identity-providers/names", headers={"Accept": accept})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/identity-providers/names/"),
        ("POST", "/admin/authentication/"),
        ("GET", "/admin/authorization/"),
        ("GET", "/admin/otp/seeds/"),
    ],
)
def test_a_trailing_slash_is_not_a_redirect(live: LiveServer, method: str, path: str) -> None:
    response = live.call(method, path, headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json() == {"id": "not found",
                               "message": "The requested resource can not be found."}  # fmt: skip


def test_a_distinguished_name_with_a_slash(live: LiveServer) -> None:
    _enrolled_full_token(live, "ops/eu", "ops-pass")
    admin = _simple_login(live, "service", "root", "root-pass").json()["token"]
    listing = live.call("GET", "/admin/otp/seeds", token=admin).json()["data"]
    assert [s["userDistinguishedName"] for s in listing] == ["CN=ops/eu,OU=local"]
    gone = live.call("DELETE", "/admin/otp/seeds/CN=ops%2Feu,OU=local", token=admin)
    assert gone.status_code == 204
    assert live.call("GET", "/admin/otp/seeds", token=admin).json()["data"] == []
    again = live.call("DELETE", "/admin/otp/seeds/CN=ops%2Feu,OU=local", token=admin)
    assert again.status_code == 404


def test_no_mfa_to_initialize_is_not_a_token_error(live: LiveServer) -> None:
    bob = live.login("bob", "bob-pass", provider="service")["token"]
    for response in (live.initialize(bob), live.otp(bob, "123456")):
        assert response.status_code == 401
        assert response.json() == {
            "id": "authentication failed",
            "message": "Authentication failed.",
            "reason": "This user has no multi-factor authentication.",
        }


def test_the_mfa_token_never_outlives_the_partial_one(live: LiveServer) -> None:
    login = live.login("alice", "alice-pass")  # token lifetime 1 h
    secret = live.initialize(login["token"]).json()["secret"]
    live.clock.advance(1800)
    mfa = live.otp(login["token"], totp_now(secret, live.clock.now)).json()
    assert mfa["expires"] == login["expires"]  # not 1 h after the OTP
    full = live.call("GET", "/admin/authorization", token=mfa["token"]).json()
    expected = dt.datetime.fromtimestamp(live.clock.now + 3600, dt.UTC)
    assert full["expires"] == expected.isoformat().replace("+00:00", "Z")
    live.clock.advance(1800)
    assert live.call("GET", "/admin/authorization", token=mfa["token"]).status_code == 401


def test_a_token_is_spent_once_under_concurrent_requests(live: LiveServer) -> None:
    token = live.login("alice", "alice-pass")["token"]
    secret = live.initialize(token).json()["secret"]
    mfa = live.otp(token, totp_now(secret, live.clock.now)).json()["token"]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=10) as client:
            headers = {**ACCEPT, "Authorization": f"Bearer {mfa}"}
            return list(
                await asyncio.gather(
                    *(client.get(live.url + "/admin/authorization", headers=headers)
                      for _ in range(20))
                )
            )  # fmt: skip

    statuses = sorted(r.status_code for r in asyncio.run(burst()))
    assert statuses == [200] + [401] * 19
