"""The mfa_server fixtures as a client developer uses them: this module imports nothing from
server/, only the fixtures the plugin provides and their client. It tests a tiny API client
written here (its retries, its login with an OTP, its handling of an expired token) against
the real server process. README.md quotes the first part."""

from __future__ import annotations

import subprocess
from typing import Any

import httpx
import pytest

ACCEPT = {"Accept": "application/vnd.appgate.peer-v22+json"}
NAMES = "/admin/identity-providers/names"


def get_with_retries(client: httpx.Client, path: str, attempts: int = 3) -> httpx.Response:
    """The client under test: a GET retried on a 500 or 503 and on a broken connection."""
    for attempt in range(1, attempts + 1):
        try:
            response = client.get(path)
        except (httpx.ReadError, httpx.RemoteProtocolError):  # reset, or closed unanswered
            if attempt == attempts:
                raise
            continue
        if response.status_code not in (500, 503) or attempt == attempts:
            return response
    raise AssertionError("not reached")


@pytest.mark.mfa_server  # no config: the demo's users
def test_the_client_retries_through_a_reset_and_a_503(mfa_server: Any) -> None:
    mfa_server.faults.add("GET", NAMES, fault="reset")
    mfa_server.faults.add("GET", NAMES, status=503)
    with httpx.Client(base_url=mfa_server.url, headers=ACCEPT, timeout=5) as client:
        response = get_with_retries(client, NAMES)
    assert response.status_code == 200
    assert [e["status"] for e in mfa_server.journal()] == [None, 503, 200]


@pytest.mark.mfa_server
def test_the_client_gives_up_after_three_attempts(mfa_server: Any) -> None:
    mfa_server.faults.add("GET", NAMES, status=500, times=5)
    with httpx.Client(base_url=mfa_server.url, headers=ACCEPT, timeout=5) as client:
        response = get_with_retries(client, NAMES)
    assert response.status_code == 500
    assert response.json()["id"] == "unexpected error"  # the server's own error shape
    assert len(mfa_server.journal()) == 3
    assert mfa_server.faults.list()[0]["remaining"] == 2


@pytest.mark.mfa_server
def test_the_client_stops_retrying_when_the_connection_keeps_breaking(mfa_server: Any) -> None:
    mfa_server.faults.add("GET", NAMES, fault="empty", times=3)
    with (
        httpx.Client(base_url=mfa_server.url, headers=ACCEPT, timeout=5) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        get_with_retries(client, NAMES)
    assert [e["fault"]["fault"] for e in mfa_server.journal()] == ["empty"] * 3


# A login with a code the test computes, and a token that expires on the server's clock

CONFIG = {
    "server": {"tokenLifetime": "10m"},
    "identityProviders": [
        {"name": "corp", "mfaProvider": "totp",
         "users": [{"username": "ann", "password": "ann-pass"}]},
    ],
    "mfaProviders": [{"name": "totp", "type": "DefaultTimeBased"}],
}  # fmt: skip
NOW = 1_800_000_000


class TinyClient:
    """A client under test: logs in with a password and an OTP, keeps the token."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.token: str | None = None

    def login(self, user: str, password: str, otp: str) -> None:
        partial = self.http.post("/admin/authentication", json={
            "providerName": "corp", "username": user, "password": password,
            "deviceId": "4c07bc67-57ea-42dd-b702-c2d6c45419fc"}).json()["token"]  # fmt: skip
        mfa = self._post("/admin/authentication/otp", partial, {"otp": otp}).json()["token"]
        self.token = self._get("/admin/authorization", mfa).json()["token"]

    def logged_in(self) -> bool:
        assert self.token is not None
        return self._get("/admin/authorization", self.token).status_code == 200

    def _get(self, path: str, token: str) -> httpx.Response:
        return self.http.get(path, headers={"Authorization": f"Bearer {token}"})

    def _post(self, path: str, token: str, body: dict[str, str]) -> httpx.Response:
        return self.http.post(path, headers={"Authorization": f"Bearer {token}"}, json=body)


def oathtool(secret: str, when: int) -> str:
    command = ["oathtool", "--totp", "--base32", "-N", f"@{when}", secret]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.mfa_server(config=CONFIG)
def test_the_client_logs_in_and_notices_its_token_expire(mfa_server: Any) -> None:
    mfa_server.clock.set(NOW)
    secret = mfa_server.seed("CN=ann,OU=corp")  # a known secret: the test computes the code
    with httpx.Client(base_url=mfa_server.url, headers=ACCEPT, timeout=5) as http:
        client = TinyClient(http)
        client.login("ann", "ann-pass", oathtool(secret, NOW))
        assert client.logged_in()
        mfa_server.clock.advance(599)
        assert client.logged_in()
        mfa_server.clock.advance(1)  # the 10 minutes are over, no sleeping
        assert not client.logged_in()


def test_a_factory_starts_as_many_servers_as_a_test_needs(mfa_server_factory: Any) -> None:
    first, second = mfa_server_factory(CONFIG), mfa_server_factory(CONFIG)
    assert first.url != second.url
    first.clock.set(NOW)
    assert second.clock.now() != NOW  # each has its own clock, data and journal
