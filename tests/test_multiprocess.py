"""Two server processes on one PostgreSQL database behave as one server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ACCEPT, DEVICE_ID, server_process, totp_now

LOCKED = "Too many failed attempts. Try again later."


def _config(url: str) -> dict[str, Any]:
    return {
        "storage": {"url": url, "encryptionKeyFile": "./shared.key"},
        "identityProviders": [
            {"name": "local", "mfaProvider": "builtin", "users": [
                {"username": "alice", "password": "alice-pass"},
                {"username": "dave", "password": "dave-pass"},
                {"username": "erin", "password": "erin-pass"},
            ]},
        ],
        "mfaProviders": [{"name": "builtin", "type": "DefaultTimeBased"}],
    }  # fmt: skip


@pytest.fixture
def two(postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    config = _config(postgres_url)
    # same folder, so the same seed key file; the first process creates it
    with (
        server_process(config, tmp_path, "a.yaml") as a,
        server_process(config, tmp_path, "b.yaml") as b,
    ):
        yield a, b


def _login(client: httpx.Client, url: str, user: str) -> str:
    response = client.post(
        url + "/admin/authentication",
        headers=ACCEPT,
        json={"providerName": "local", "username": user, "password": f"{user}-pass",
              "deviceId": DEVICE_ID},
    )  # fmt: skip
    assert response.status_code == 200
    token: str = response.json()["token"]
    return token


def _call(
    client: httpx.Client, url: str, path: str, token: str, body: Any = None
) -> httpx.Response:
    method = "GET" if path == "/admin/authorization" else "POST"
    return client.request(
        method, url + path, headers={**ACCEPT, "Authorization": f"Bearer {token}"}, json=body
    )


INIT = "/admin/authentication/otp/initialize"
OTP = "/admin/authentication/otp"


def test_one_login_across_two_processes(two: tuple[str, str]) -> None:
    a, b = two
    with httpx.Client(timeout=10) as client:
        token = _login(client, a, "alice")
        secret = _call(client, b, INIT, token).json()["secret"]  # partial from A, init on B
        code = totp_now(secret, time.time())
        mfa = _call(client, a, OTP, token, {"otp": code})  # OTP on A
        assert mfa.status_code == 200
        # the same code is refused on B (replay protection is shared)
        again = _login(client, b, "alice")
        assert _call(client, b, OTP, again, {"otp": code}).status_code == 401
        # the seed enrolled via A is AlreadySeeded on B
        assert _call(client, b, INIT, again).json() == {"type": "AlreadySeeded"}
        # logout on B revokes the token on A
        full = _call(client, b, "/admin/authorization", mfa.json()["token"]).json()["token"]
        assert _call(client, a, "/admin/authorization", full).status_code == 200
        assert _call(client, b, "/admin/logout", full).status_code == 204
        assert _call(client, a, "/admin/authorization", full).status_code == 401


def test_wrong_codes_on_both_processes_add_up_to_one_lockout(two: tuple[str, str]) -> None:
    a, b = two
    with httpx.Client(timeout=10) as client:
        token = _login(client, a, "dave")
        secret = _call(client, a, INIT, token).json()["secret"]
        reasons = [
            _call(client, url, OTP, token, {"otp": "000000"}).json()["reason"]
            for url in (a, b, a, b, a)
        ]
        assert reasons == ["Invalid OTP."] * 4 + [LOCKED]
        right = _call(client, b, OTP, token, {"otp": totp_now(secret, time.time())})
        assert right.json()["reason"] == LOCKED


def test_twenty_concurrent_first_initializes_share_one_secret(two: tuple[str, str]) -> None:
    a, b = two
    with httpx.Client(timeout=10) as client:
        tokens = [_login(client, a if i % 2 else b, "erin") for i in range(20)]

    async def all_at_once() -> list[str]:
        async with httpx.AsyncClient(timeout=20) as client:
            responses = await asyncio.gather(*(
                client.post((a if i % 2 else b) + INIT,
                            headers={**ACCEPT, "Authorization": f"Bearer {t}"})
                for i, t in enumerate(tokens)
            ))  # fmt: skip
        return [r.json()["secret"] for r in responses]

    secrets = asyncio.run(all_at_once())
    assert len(secrets) == 20 and len(set(secrets)) == 1
