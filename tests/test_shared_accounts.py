"""One account used by many at once (a team, a CI farm) on real server processes: right answers
in parallel are never refused, wrong ones still stop at the lockout's budget, and pushes are
limited per account (push fatigue)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from appgate_mfa_server.passwords import hash_password
from mock_radius.pytest_plugin import MockRadius
from tests.conftest import (
    ACCEPT,
    DEVICE_ID,
    ServerProcess,
    http_call,
    http_login,
    mfa_server,
    radius_provider,
)

TIME_SCALE = 0.5  # paula's phone approves after 2 s x 0.5
pytestmark = pytest.mark.mock_radius(time_scale=TIME_SCALE)  # the module's mock
OTP = "/admin/authentication/otp"
INIT = "/admin/authentication/otp/initialize"
LOCKED = "Too many failed attempts. Try again later."
CAROL_HASH = hash_password("carol-pass")


def _config(storage: str, radius_port: int, **push: Any) -> dict[str, Any]:
    return {
        "storage": {"url": storage, "encryptionKeyFile": "./shared.key"},
        "identityProviders": [
            {"name": "local", "users": [{"username": "carol", "passwordHash": CAROL_HASH}]},
            {"name": "phone", "mfaProvider": "phone",
             "users": [{"username": "paula", "password": "paula-pass"}]},
        ],
        "mfaProviders": [
            radius_provider("phone", radius_port, mode="Push",
                            challengeSharedSecret="push-secret", **push),
        ],
    }  # fmt: skip


def _start(
    folder: Path, config: dict[str, Any], count: int, stack: Any
) -> tuple[list[str], list[ServerProcess]]:
    """``count`` server processes on one database: their URLs and the processes."""
    path = folder / "server.yaml"
    path.write_text(yaml.safe_dump(config))
    started = [stack.enter_context(mfa_server(["--config", str(path)])) for _ in range(count)]
    return [url for url, _, _ in started], [process for _, process, _ in started]


async def _push(client: httpx.AsyncClient, url: str) -> tuple[int, float, dict[str, Any]]:
    """paula's whole login: credentials, initialize, the push; (status, seconds, body)."""
    login = await client.post(url + "/admin/authentication", headers=ACCEPT, json={
        "providerName": "phone", "username": "paula", "password": "paula-pass",
        "deviceId": DEVICE_ID})  # fmt: skip
    token = login.json()["token"]
    headers = {**ACCEPT, "Authorization": f"Bearer {token}"}
    assert (await client.post(url + INIT, headers=headers)).json()["type"] == "Push"
    started = time.monotonic()
    answer = await client.post(url + OTP, headers=headers, json={"otp": "push"})
    return answer.status_code, time.monotonic() - started, answer.json()


async def _pushes(urls: list[str]) -> list[tuple[int, float, dict[str, Any]]]:
    async with httpx.AsyncClient(timeout=60) as client:
        return list(await asyncio.gather(*(_push(client, url) for url in urls)))


def _journal_steps(mock: MockRadius, since: int) -> list[str | None]:
    return [e.get("step") for e in mock.control.journal(user="paula", since=since)
            if not e["outcome"].startswith("retransmission")]  # fmt: skip


@pytest.mark.slow
def test_eight_right_pushes_at_once_for_one_user_all_pass_within_two_delays(
    mock: MockRadius, postgres_url: str, tmp_path: Path
) -> None:
    """Eight sessions of paula push at once, over two processes, with a lockout budget of 5:
    five are evaluated at once, three wait for a place and go when the first ones succeed.
    None is refused, and no push is sent twice."""
    from contextlib import ExitStack

    mock.control.reset("paula")
    with ExitStack() as stack:
        config = _config(postgres_url, mock.port, pushLimit=20)
        urls, processes = _start(tmp_path, config, 2, stack)
        mark = mock.control.health()["journal"]["lastSeq"]
        [(status, alone, _body)] = asyncio.run(_pushes(urls[:1]))  # the reference: one push
        assert status == 200
        answers = asyncio.run(_pushes([urls[i % 2] for i in range(8)]))
    assert [status for status, _, _ in answers] == [200] * 8, answers
    took = sorted(seconds for _, seconds, _ in answers)
    # a push takes one delay; the ones that waited take two; three rounds would take three
    assert took[-1] < 2.8 * alone, (took, alone)
    assert _journal_steps(mock, mark) == ["approved"] * 9
    refused = sum(len(p.log.events(n)) for p in processes
                  for n in ("mfa_refused_locked", "attempt_still_in_flight"))  # fmt: skip
    assert refused == 0


async def _carol_logins(urls: list[str], passwords: list[str]) -> list[httpx.Response]:
    """carol's logins at once, the n-th to ``urls[n]`` with ``passwords[n]``."""
    async with httpx.AsyncClient(timeout=60) as client:

        def login(url: str, password: str) -> Any:
            body = {"providerName": "local", "username": "carol", "password": password,
                    "deviceId": DEVICE_ID}  # fmt: skip
            return client.post(url + "/admin/authentication", headers=ACCEPT, json=body)

        return list(await asyncio.gather(*map(login, urls, passwords)))


@pytest.mark.slow
def test_twenty_right_scrypt_logins_at_once_all_pass(
    mock: MockRadius, postgres_url: str, tmp_path: Path
) -> None:
    """The login lockout's budget is 10: the other ten wait (on either process) for a place.
    Wrong passwords still stop at the budget: ten evaluated, the rest refused."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        urls, processes = _start(tmp_path, _config(postgres_url, mock.port), 2, stack)
        right = asyncio.run(_carol_logins([urls[n % 2] for n in range(20)], ["carol-pass"] * 20))
        assert [a.status_code for a in right] == [200] * 20, [a.text for a in right]
        guesses = [f"guess{n}" for n in range(40)]
        wrong = asyncio.run(_carol_logins([urls[n % 2] for n in range(40)], guesses))
        reasons = [a.json()["reason"] for a in wrong]
        assert reasons.count("Invalid username or password.") == 9
        assert reasons.count(LOCKED) == 31

    def events(name: str) -> int:  # read once the processes have stopped: every line is out
        return sum(len(p.log.events(name)) for p in processes)

    counted = [events(name) for name in ("login_ok", "login_failed", "login_refused_locked")]
    assert counted == [20, 10, 30]
    assert events("login_lockout") == 1


@pytest.mark.slow
def test_pushes_beyond_the_limit_are_refused_until_the_window_moves(
    mock: MockRadius, tmp_path: Path
) -> None:
    """Push fatigue: three pushes in the window (answered or not), then a refusal that says when
    to retry, with an audit event; the phone is not prompted for it. The server's clock is the
    test control's, so the window moves without waiting."""
    config = _config("sqlite:///./mfa.db", mock.port, pushLimit=3, pushWindow="10m")
    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump(config))
    mock.control.reset("paula")
    with mfa_server(["--config", str(path), "--test-control"]) as (url, process, _ready):
        client = httpx.Client(timeout=30)
        assert client.post(url + "/_test/clock", json={"now": 1_800_000_000}).status_code == 200
        mark = mock.control.health()["journal"]["lastSeq"]
        tokens = [http_login(client, url, "phone", "paula", "paula-pass") for _ in range(4)]
        for token in tokens:
            assert http_call(client, url, INIT, token).status_code == 200
        for token in tokens[:3]:  # at 0 s, 60 s and 120 s
            assert http_call(client, url, OTP, token, {"otp": "push"}).status_code == 200
            assert client.post(url + "/_test/clock", json={"advance": 60}).status_code == 200
        assert client.post(url + "/_test/clock", json={"advance": 20}).status_code == 200
        refused = http_call(client, url, OTP, tokens[3], {"otp": "push"})  # at 200 s
        assert refused.status_code == 401
        assert refused.json() == {
            "id": "authentication failed",
            "message": "Authentication failed.",
            "reason": "Too many push requests: at most 3 in 600 s. Try again in 400 s.",
            "retryAfter": 400,
        }
        assert _journal_steps(mock, mark) == ["approved"] * 3  # no fourth prompt
        event = process.log.wait_for("push_limited")
        assert (event["username"], event["retryAt"]) == ("paula", "2027-01-15T08:10:00Z")
        # at 600 s the first push leaves the window: one more may go, then none until 660 s
        assert client.post(url + "/_test/clock", json={"advance": 399}).status_code == 200
        assert http_call(client, url, OTP, tokens[3], {"otp": "push"}).json()["retryAfter"] == 1
        # (a retry within 2 s would join the refusal just given: push answers are shared so)
        assert client.post(url + "/_test/clock", json={"advance": 3}).status_code == 200
        assert http_call(client, url, OTP, tokens[3], {"otp": "push"}).status_code == 200
        fresh = http_login(client, url, "phone", "paula", "paula-pass")
        http_call(client, url, INIT, fresh)
        assert http_call(client, url, OTP, fresh, {"otp": "push"}).json()["retryAfter"] == 58
        assert _journal_steps(mock, mark) == ["approved"] * 4
        client.close()
