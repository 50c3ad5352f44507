"""Two server processes on one PostgreSQL database behave as one server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ACCEPT, http_call, http_login, server_process, totp_now

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


INIT = "/admin/authentication/otp/initialize"
OTP = "/admin/authentication/otp"


def test_one_login_across_two_processes(two: tuple[str, str]) -> None:
    a, b = two
    with httpx.Client(timeout=10) as client:
        token = http_login(client, a, "local", "alice", "alice-pass")
        secret = http_call(client, b, INIT, token).json()["secret"]  # partial from A, init on B
        code = totp_now(secret, time.time())
        mfa = http_call(client, a, OTP, token, {"otp": code})  # OTP on A
        assert mfa.status_code == 200
        # the same code is refused on B (replay protection is shared)
        again = http_login(client, b, "local", "alice", "alice-pass")
        assert http_call(client, b, OTP, again, {"otp": code}).status_code == 401
        # the seed enrolled via A is AlreadySeeded on B
        assert http_call(client, b, INIT, again).json() == {"type": "AlreadySeeded"}
        # logout on B revokes the token on A
        full = http_call(client, b, "/admin/authorization", mfa.json()["token"]).json()["token"]
        assert http_call(client, a, "/admin/authorization", full).status_code == 200
        assert http_call(client, b, "/admin/authentication/logout", full).status_code == 204
        assert http_call(client, a, "/admin/authorization", full).status_code == 401


def test_wrong_codes_on_both_processes_add_up_to_one_lockout(two: tuple[str, str]) -> None:
    a, b = two
    with httpx.Client(timeout=10) as client:
        token = http_login(client, a, "local", "dave", "dave-pass")
        secret = http_call(client, a, INIT, token).json()["secret"]
        reasons = [
            http_call(client, url, OTP, token, {"otp": "000000"}).json()["reason"]
            for url in (a, b, a, b, a)
        ]
        assert reasons == ["Invalid OTP."] * 4 + [LOCKED]
        right = http_call(client, b, OTP, token, {"otp": totp_now(secret, time.time())})
        assert right.json()["reason"] == LOCKED


def test_twenty_concurrent_first_initializes_share_one_secret(two: tuple[str, str]) -> None:
    a, b = two
    with httpx.Client(timeout=10) as client:
        tokens = [
            http_login(client, a if i % 2 else b, "local", "erin", "erin-pass") for i in range(20)
        ]

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
