"""Two server processes on one PostgreSQL database behave as one server."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mock_radius.pytest_plugin import MockRadius
from tests.conftest import (
    ACCEPT,
    ServerLog,
    http_call,
    http_login,
    mfa_server,
    radius_provider,
    server_process,
    totp_now,
)

LOCKED = "Too many failed attempts. Try again later."
# the module's mock; with the mismatch hint on the wire, a test below tells the RADIUS server's
# Reply-Message from the server's own reasons
pytestmark = [
    pytest.mark.mock_radius(time_scale=0.5, extra_args=("--mismatch-hint",)),
    pytest.mark.slow,  # two server processes for every test
]


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


# RADIUS across processes: the mock started once for the module


@pytest.fixture
def two_with_radius(
    postgres_url: str, tmp_path: Path, mock: MockRadius
) -> Iterator[tuple[str, str]]:
    config = _config(postgres_url)
    config["identityProviders"] += [
        {"name": "rc", "mfaProvider": "rc",
         "users": [{"username": "carol", "password": "carol-pass"}]},
        {"name": "rp", "mfaProvider": "rp",
         "users": [{"username": "paula", "password": "paula-pass"}]},
    ]  # fmt: skip
    config["mfaProviders"] += [
        radius_provider("rc", mock.port, mode="Challenge", useUserPassword=True,
                        authenticationProtocol="PAP"),
        radius_provider("rp", mock.port, mode="Push", challengeSharedSecret="push-secret"),
    ]  # fmt: skip
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(yaml.safe_dump(config))
    with (
        mfa_server(["--config", str(tmp_path / "a.yaml")]) as (a, process_a, _),
        mfa_server(["--config", str(tmp_path / "b.yaml")]) as (b, process_b, _),
    ):
        servers = Servers((a, b))
        servers.logs = (process_a.log, process_b.log)
        yield servers


class Servers(tuple[str, str]):
    """Two URLs, and what each process wrote on stderr (its audit events)."""

    logs: tuple[ServerLog, ServerLog]


def _events_soon(logs: tuple[ServerLog, ...], name: str, count: int) -> list[list[str]]:
    """Each process's audit event names, once ``count`` events ``name`` have been written
    (an answer can reach the client just before its process's line reaches the pipe)."""
    deadline = time.monotonic() + 10
    while sum(len(log.events(name)) for log in logs) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return [[e["event"] for e in log.events() if "event" in e] for log in logs]


def _fresh(mock: MockRadius, user: str) -> None:
    mock.control.reset(user)
    mock.control.clear_journal()


def _requests_seen(mock: MockRadius, user: str) -> list[dict[str, Any]]:
    return [e for e in mock.control.journal(user=user)
            if not e["outcome"].startswith("retransmission")]  # fmt: skip


def test_a_challenge_finishes_without_state_on_another_process(
    two_with_radius: Servers, mock: MockRadius
) -> None:
    a, b = two_with_radius
    _fresh(mock, "carol")
    with httpx.Client(timeout=10) as client:
        token = http_login(client, a, "rc", "carol", "carol-pass")
        challenge = http_call(client, a, INIT, token, {"userPassword": "carol-pass"}).json()
        assert challenge["type"] == "Challenge" and "state" in challenge
        # the vendor's CLI sends only the code; the state comes from the store, on B
        done = http_call(client, b, OTP, token, {"otp": "123456"})
        assert done.status_code == 200, done.text
        assert done.json()["user"]["needTwoFactorAuth"] is False
    steps = [e["step"] for e in _requests_seen(mock, "carol")]
    assert steps == ["challenge", "right-code"]


def test_an_explicit_wrong_state_still_wins_over_the_kept_one(
    two_with_radius: Servers, mock: MockRadius
) -> None:
    a, b = two_with_radius
    _fresh(mock, "carol")
    with httpx.Client(timeout=10) as client:
        token = http_login(client, a, "rc", "carol", "carol-pass")
        http_call(client, a, INIT, token, {"userPassword": "carol-pass"})
        forged = base64.b64encode(b"\x00" * 40).decode()
        refused = http_call(client, b, OTP, token, {"otp": "123456", "state": forged})
        assert refused.status_code == 401
        assert refused.json()["reason"] == "The state is not one this server issued."


def test_a_push_retried_on_another_process_sends_one_request(
    two_with_radius: Servers, mock: MockRadius
) -> None:
    a, b = two_with_radius
    _fresh(mock, "paula")
    token = http_login(httpx, a, "rp", "paula", "paula-pass")

    async def both() -> list[httpx.Response]:
        headers = {**ACCEPT, "Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(timeout=20) as client:
            return list(await asyncio.gather(
                client.post(a + OTP, headers=headers, json={"otp": "x"}),
                client.post(b + OTP, headers=headers, json={"otp": "x"}),
            ))  # fmt: skip

    first, second = asyncio.run(both())
    assert first.status_code == second.status_code == 200
    assert first.json()["token"] == second.json()["token"]  # the same answer for both
    assert len(_requests_seen(mock, "paula")) == 1  # one Access-Request, one prompt
    # one process asked the RADIUS server; the other joined it, and says so in its audit log
    events = _events_soon(two_with_radius.logs, "mfa_joined_in_flight", 1)
    owner, joiner = sorted(events, key=lambda names: "mfa_joined_in_flight" in names)
    assert "mfa_ok" in owner and "mfa_joined_in_flight" not in owner
    assert "mfa_joined_in_flight" in joiner and "mfa_ok" not in joiner


def test_initialize_with_the_password_counts_only_wrong_passwords(
    two_with_radius: Servers, mock: MockRadius
) -> None:
    """Challenge with useUserPassword: initialize sends the password, so a wrong one is a guess
    under the lockout; a right one, or none, is not (seven right ones in a row never lock)."""
    a, b = two_with_radius
    _fresh(mock, "carol")
    with httpx.Client(timeout=10) as client:
        for url in (a, b, a, b, a, b, a):  # a login each: one login may get 5 challenges
            token = http_login(client, url, "rc", "carol", "carol-pass")
            right = http_call(client, url, INIT, token, {"userPassword": "carol-pass"})
            assert right.status_code == 200 and right.json()["type"] == "Challenge", right.text
        missing = http_call(client, a, INIT, token, {})
        assert missing.status_code == 422
        assert [e["field"] for e in missing.json()["errors"]] == ["userPassword"]
        wrong = http_call(client, b, INIT, token, {"userPassword": "not-carols"})
        assert (wrong.status_code, wrong.json()["reason"]) == (
            401, "mock-radius: no step of challenge matches (closest step 'challenge' failed on "
            "password)",
        )  # the RADIUS server's Reply-Message, not a lockout  # fmt: skip
