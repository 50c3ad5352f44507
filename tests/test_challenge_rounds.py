"""RADIUS Challenge over several rounds, on real processes: each further round is a 401 whose
reason is the RADIUS server's prompt, its State kept with the token (and in the body); every
round that does not end in an Access-Accept counts as a wrong guess; maxChallengeRounds ends a
login that goes on too long."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mock_radius.pytest_plugin import MockRadius, start_mock_radius
from tests.conftest import ServerProcess, http_call, http_login, mfa_server, radius_provider

INIT = "/admin/authentication/otp/initialize"
OTP = "/admin/authentication/otp"
LOCKED = "Too many failed attempts. Try again later."
ROUNDS = "Too many challenge rounds: this login has ended. Log in again."

# Three questions before the decision; any wrong answer is challenged again, for ever (the
# kind of RADIUS server that let 1,000 wrong rounds through uncounted).
THREE_ROUNDS = """
name: three-rounds
secret: testing123
users: [tri]
steps:
  - name: first
    match: {userName: tri, password: tri-pass, state: absent}
    reply: {code: Access-Challenge, attributes: {Reply-Message: "Code 1?", State: {generate: true}}}
  - name: second
    match: {password: "111111", state: issued}
    reply: {code: Access-Challenge, attributes: {Reply-Message: "Code 2?", State: {generate: true}}}
  - name: third
    match: {password: "222222", state: issued}
    reply: {code: Access-Challenge, attributes: {Reply-Message: "Code 3?", State: {generate: true}}}
  - name: accept
    match: {password: "333333", state: issued}
    reply: {code: Access-Accept}
  - name: again
    match: {state: issued}
    times: always
    reply:
      code: Access-Challenge
      attributes: {Reply-Message: "Wrong code, try again", State: {generate: true}}
"""


@pytest.fixture(scope="module")
def radius(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockRadius]:
    folder = tmp_path_factory.mktemp("rounds")
    (folder / "three-rounds.yaml").write_text(THREE_ROUNDS)
    mock = start_mock_radius(folder)
    yield mock
    mock.stop()


def _server(radius: MockRadius, folder: Path, **provider: Any) -> Any:
    config = {
        "storage": {"url": "sqlite:///./mfa.db", "encryptionKeyFile": "./seed.key"},
        "identityProviders": [{"name": "corp", "mfaProvider": "corp",
                               "users": [{"username": "tri", "password": "tri-pass"}]}],
        "mfaProviders": [radius_provider("corp", radius.port, timeout=3, mode="Challenge",
                                         useUserPassword=True, **provider)],
    }  # fmt: skip
    path = folder / "server.yaml"
    path.write_text(yaml.safe_dump(config))
    return mfa_server(["--config", str(path)])


def _start(client: httpx.Client, url: str) -> tuple[str, dict[str, Any]]:
    token = http_login(client, url, "corp", "tri", "tri-pass")
    first = http_call(client, url, INIT, token, {"userPassword": "tri-pass"})
    assert first.status_code == 200, first.text
    return token, first.json()


def _steps(radius: MockRadius, since: int) -> list[str | None]:
    return [e.get("step") for e in radius.control.journal(user="tri", since=since)]


@pytest.mark.parametrize("sends_state", [False, True], ids=["cli-way", "state-sent-back"])
def test_three_rounds_end_in_a_login(radius: MockRadius, tmp_path: Path, sends_state: bool) -> None:
    """A client that never sends a state goes on with the one kept with the token; one that
    does reads each new State from the 401's body."""
    radius.control.reset("tri")
    mark = radius.control.health()["journal"]["lastSeq"]
    with _server(radius, tmp_path) as (url, _process, _ready), httpx.Client(timeout=10) as client:
        token, first = _start(client, url)
        assert (first["type"], first["responseMessage"]) == ("Challenge", "Code 1?")
        state = first["state"]
        for code, prompt in (("111111", "Code 2?"), ("222222", "Code 3?")):
            body = {"otp": code, **({"state": state} if sends_state else {})}
            again = http_call(client, url, OTP, token, body)
            assert again.status_code == 401
            assert set(again.json()) == {"id", "message", "reason", "state"}
            assert (again.json()["id"], again.json()["reason"]) == ("authentication failed", prompt)
            assert again.json()["state"] != state
            state = again.json()["state"]
        body = {"otp": "333333", **({"state": state} if sends_state else {})}
        done = http_call(client, url, OTP, token, body)
        assert done.status_code == 200, done.text
        full = http_call(client, url, "/admin/authorization", done.json()["token"])
        assert full.status_code == 200
    assert _steps(radius, mark) == ["first", "second", "third", "accept"]


@pytest.mark.slow
def test_a_thousand_wrong_rounds_are_locked_out_after_five(
    radius: MockRadius, tmp_path: Path
) -> None:
    """A RADIUS server that challenges every wrong code again: each of those rounds is a wrong
    guess, so the fifth locks, and only five ever reach the RADIUS server."""
    radius.control.reset("tri")
    mark = radius.control.health()["journal"]["lastSeq"]
    server = _server(radius, tmp_path, maxChallengeRounds=100)
    with server as (url, process, _ready), httpx.Client(timeout=10) as client:
        token, _ = _start(client, url)
        answers = [http_call(client, url, OTP, token, {"otp": f"{n:06d}"}) for n in range(1000)]
        reasons = [a.json()["reason"] for a in answers]
        assert {a.status_code for a in answers} == {401}
        assert reasons[:4] == ["Wrong code, try again"] * 4
        assert reasons[4:] == [LOCKED] * 996
        lockout: ServerProcess = process
    assert _steps(radius, mark) == ["first"] + ["again"] * 5
    assert len(lockout.log.events("lockout")) == 1
    assert len(lockout.log.events("mfa_challenged_again")) == 5


def test_a_login_beyond_max_challenge_rounds_ends(radius: MockRadius, tmp_path: Path) -> None:
    """With maxChallengeRounds 3 (and a lockout that would allow more), the fourth Challenge
    ends the login: its token is dead, a new login starts afresh."""
    radius.control.reset("tri")
    server = _server(radius, tmp_path, maxChallengeRounds=3, lockout={"maxFailedAttempts": 50})
    with server as (url, process, _ready), httpx.Client(timeout=10) as client:
        token, _ = _start(client, url)  # round 1
        for code in ("000001", "000002"):  # rounds 2 and 3
            assert http_call(client, url, OTP, token, {"otp": code}).json()["reason"] == (
                "Wrong code, try again"
            )
        ended = http_call(client, url, OTP, token, {"otp": "000003"})  # round 4
        assert (ended.status_code, ended.json()["reason"]) == (401, ROUNDS)
        assert "state" not in ended.json()
        after = http_call(client, url, OTP, token, {"otp": "000004"})
        assert (after.status_code, after.json()["id"]) == (401, "token error")
        assert http_call(client, url, INIT, token, {"userPassword": "tri-pass"}).status_code == 401
        # a new login: three rounds again
        token, first = _start(client, url)
        assert first["responseMessage"] == "Code 1?"
        event = process.log.wait_for("mfa_too_many_rounds")
        assert (event["username"], event["rounds"]) == ("tri", 4)


def test_initialize_again_counts_as_a_round(radius: MockRadius, tmp_path: Path) -> None:
    """Every Challenge counts, initialize's too: initializing over and over (each may send an
    SMS) ends the login at the limit without asking the RADIUS server again."""
    radius.control.reset("tri")
    mark = radius.control.health()["journal"]["lastSeq"]
    with (
        _server(radius, tmp_path, maxChallengeRounds=2) as (url, _process, _ready),
        httpx.Client(timeout=10) as client,
    ):
        token, _ = _start(client, url)
        assert http_call(client, url, INIT, token, {"userPassword": "tri-pass"}).status_code == 200
        third = http_call(client, url, INIT, token, {"userPassword": "tri-pass"})
        assert (third.status_code, third.json()["reason"]) == (401, ROUNDS)
    assert _steps(radius, mark) == ["first", "first"]
