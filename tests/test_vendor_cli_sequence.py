"""The vendor's CLI (sdpctl, on its Go client for api/v22+) signing in, step by step, over HTTPS.

What it does, from its source (pkg/auth/signin.go, mfa.go, pkg/factory/http.go):
1. POST /admin/authentication with Accept peer-v5 and {"deviceId", "providerName": ""}: a
   probe; it reads minSupportedVersion/maxSupportedVersion from the 406 and uses the max.
2. GET /identity-providers/names, POST /authentication with deviceId, password, providerName
   and username, then GET /authorization: 412 means an OTP is owed.
3. POST /authentication/otp/initialize with {"userPassword": <the login password>} for every
   user, TOTP users included.
4. POST /authentication/otp with {"otp": ...} only: never the state; a dummy for a push.
5. GET /authorization for the full token (and later with it, to test a stored token).
6. POST /authentication/logout.
Every request carries two Accept header lines (the generated client's application/json and the
CLI's versioned one) and Accept-Encoding: gzip, over HTTPS only.
"""

from __future__ import annotations

import datetime as dt
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mock_radius.pytest_plugin import MockRadius
from tests.conftest import mfa_server, radius_provider, totp_now
from tests.tls_files import make_ca_and_server

DEVICE_ID = "5a4f0bbe-1bd1-4b3c-9c34-4c9f2b1b2e11"
pytestmark = pytest.mark.mock_radius(time_scale=0.2)  # the module's mock


class VendorCli:
    """The call sequence of `sdpctl configure signin`, with its headers."""

    def __init__(self, url: str, ca_file: Path) -> None:
        self.url = url + "/admin"
        self.http = httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file)),
                                 timeout=30)  # fmt: skip
        self.version = 0
        self.seen: list[tuple[str, int, dict[str, Any]]] = []

    def _headers(self, version: int, token: str | None) -> list[tuple[str, str]]:
        headers = [
            ("Accept", "application/json"),
            ("Accept", f"application/vnd.appgate.peer-v{version}+json"),
            ("Accept-Encoding", "gzip"),
            ("User-Agent", "sdpctl/2025.09.30"),
        ]
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        return headers

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             version: int | None = None) -> httpx.Response:  # fmt: skip
        headers = self._headers(version or self.version, token)
        response = self.http.request(method, self.url + path, json=body, headers=headers)
        data = response.json() if response.content else {}
        self.seen.append((f"{method} {path}", response.status_code, data))
        return response

    def sign_in(self, provider: str, username: str, password: str,
                answer: Callable[[dict[str, Any]], str | list[str]]) -> str:  # fmt: skip
        """``answer`` gives the code, or the codes, the user types at the CLI's prompts."""
        probe = self.call("POST", "/authentication", {"deviceId": DEVICE_ID, "providerName": ""},
                          version=5)  # fmt: skip
        assert probe.status_code == 406
        versions = probe.json()
        assert (versions["minSupportedVersion"], versions["maxSupportedVersion"]) == (18, 22)
        self.version = versions["maxSupportedVersion"]
        names = self.call("GET", "/identity-providers/names").json()["data"]
        assert provider in [n["name"] for n in names]
        login = self.call("POST", "/authentication", {
            "deviceId": DEVICE_ID, "password": password, "providerName": provider,
            "username": username})  # fmt: skip
        assert login.status_code == 200
        body = login.json()
        _rfc3339(body["expires"])
        token = body["token"]
        owed = self.call("GET", "/authorization", token=token)
        if owed.status_code == 412:
            assert body["user"]["needTwoFactorAuth"] is True
            assert owed.json()["id"] == "mfa required"
            init = self.call("POST", "/authentication/otp/initialize",
                             {"userPassword": password}, token=token)  # fmt: skip
            assert init.status_code == 200
            codes = answer(init.json())
            # the CLI prompts for a code up to three times: a 401 prints "Invalid one-time
            # password" and prompts again (a further RADIUS challenge round arrives so)
            for code in ([codes] if isinstance(codes, str) else codes)[:3]:
                done = self.call("POST", "/authentication/otp", {"otp": code}, token=token)
                if done.status_code != 401:
                    break
            assert done.status_code == 200, done.text
            assert done.json()["user"]["needTwoFactorAuth"] is False
            _rfc3339(done.json()["expires"])
            token = done.json()["token"]
        else:
            assert owed.status_code == 200 and body["user"]["needTwoFactorAuth"] is False
        full = self.call("GET", "/authorization", token=token)
        assert full.status_code == 200
        assert full.json()["user"] == {**full.json()["user"], "name": username,
                                       "needTwoFactorAuth": False}  # fmt: skip
        _rfc3339(full.json()["expires"])
        stored: str = full.json()["token"]
        # a later command tests the stored token: a full token answers itself
        assert self.call("GET", "/authorization", token=stored).json()["token"] == stored
        return stored

    def sign_out(self, token: str) -> None:
        assert self.call("POST", "/authentication/logout", token=token).status_code == 204
        assert self.call("GET", "/authorization", token=token).status_code == 401


def _rfc3339(text: str) -> dt.datetime:
    """What Go's time.Time JSON decoding demands (RFC 3339, with a zone)."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment.tzinfo is not None and text.endswith("Z"), text
    return moment


@pytest.fixture
def server(tmp_path: Path, mock: MockRadius) -> Iterator[tuple[str, Path]]:
    ca, cert, key = make_ca_and_server(tmp_path)
    config = {
        "server": {"tls": {"certFile": cert.name, "keyFile": key.name}},  # relative to the file
        "storage": {"url": "sqlite:///./mfa.db", "encryptionKeyFile": "./seed.key"},
        "identityProviders": [
            {"name": "local", "mfaProvider": "builtin",
             "users": [{"username": "alice", "password": "alice-pass"}]},
            {"name": "service", "users": [{"username": "bob", "password": "bob-pass"}]},
            {"name": "corp", "mfaProvider": "corp",
             "users": [{"username": "carol", "password": "carol-pass"}]},
            {"name": "phone", "mfaProvider": "phone",
             "users": [{"username": "paula", "password": "paula-pass"}]},
            {"name": "rounds", "mfaProvider": "rounds",
             "users": [{"username": "chris", "password": "chris-pass"}]},
        ],
        "mfaProviders": [
            {"name": "builtin", "type": "DefaultTimeBased"},
            radius_provider("corp", mock.port, mode="Challenge", useUserPassword=True,
                            authenticationProtocol="PAP"),
            radius_provider("phone", mock.port, mode="Push", challengeSharedSecret="push-secret"),
            radius_provider("rounds", mock.port, mode="Challenge", useUserPassword=True),
        ],
    }  # fmt: skip
    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump(config))
    with mfa_server(["--config", str(path)]) as (url, _process, ready):
        assert ready["scheme"] == "https"
        yield url, ca


@pytest.fixture
def cli(server: tuple[str, Path]) -> Iterator[VendorCli]:
    """The CLI against ``server``, its connection closed before the server stops (an idle TLS
    client holds a graceful stop for its whole 5 s)."""
    vendor = VendorCli(*server)
    yield vendor
    vendor.http.close()


def test_totp_user_signs_in_twice_and_out(cli: VendorCli) -> None:
    first: dict[str, Any] = {}

    def enrol(init: dict[str, Any]) -> str:
        assert init["type"] == "Secret"
        assert set(init) == {"type", "secret", "otpAuthUrl", "barcode"}
        first.update(init)
        return totp_now(init["secret"], time.time())

    token = cli.sign_in("local", "alice", "alice-pass", enrol)
    cli.sign_out(token)

    def seeded(init: dict[str, Any]) -> str:
        assert init == {"type": "AlreadySeeded"}
        return totp_now(first["secret"], time.time() + 30)  # the next step: no replay

    cli.sign_out(cli.sign_in("local", "alice", "alice-pass", seeded))


def test_radius_challenge_without_sending_the_state_back(cli: VendorCli, mock: MockRadius) -> None:
    mock.control.reset("carol")

    def code(init: dict[str, Any]) -> str:
        assert init["type"] == "Challenge"
        assert init["responseMessage"] == "Enter the code shown on your token"
        assert isinstance(init["timeout"], int | float) and "state" in init
        return "123456"  # the CLI prompts for the code and sends only that

    cli.sign_out(cli.sign_in("corp", "carol", "carol-pass", code))


def test_two_challenge_rounds_the_way_the_cli_prompts(cli: VendorCli, mock: MockRadius) -> None:
    """chris's RADIUS server asks two codes in a row. The CLI never sends a state and only
    knows 200 (done) and 401 (prompt again): the second round must be a 401, and the next code
    must answer the second State, kept with the token."""
    mock.control.reset("chris")
    mark = mock.control.health()["journal"]["lastSeq"]

    def codes(init: dict[str, Any]) -> list[str]:
        assert init["type"] == "Challenge" and init["responseMessage"] == "Enter the first code"
        return ["111111", "222222"]

    cli.sign_out(cli.sign_in("rounds", "chris", "chris-pass", codes))
    otp = [(status, data) for step, status, data in cli.seen if step == "POST /authentication/otp"]
    assert [status for status, _ in otp] == [401, 200]
    assert otp[0][1]["reason"] == "Enter the second code" and "state" in otp[0][1]
    steps = [e.get("step") for e in mock.control.journal(since=mark)]
    assert steps == ["first-challenge", "second-challenge", "accept"]


def test_radius_push_with_a_dummy_otp(cli: VendorCli, mock: MockRadius) -> None:
    mock.control.reset("paula")

    def dummy(init: dict[str, Any]) -> str:
        assert init == {"type": "Push", "timeout": 6, "sendPassword": False}
        return "push"

    cli.sign_out(cli.sign_in("phone", "paula", "paula-pass", dummy))


def test_user_without_mfa_and_the_exact_sequence(cli: VendorCli) -> None:
    cli.sign_out(cli.sign_in("service", "bob", "bob-pass", lambda init: "unused"))
    assert [(step, status) for step, status, _ in cli.seen] == [
        ("POST /authentication", 406),
        ("GET /identity-providers/names", 200),
        ("POST /authentication", 200),
        ("GET /authorization", 200),
        ("GET /authorization", 200),
        ("GET /authorization", 200),
        ("POST /authentication/logout", 204),
        ("GET /authorization", 401),
    ]


def test_plain_http_is_not_spoken_on_the_tls_port(server: tuple[str, Path]) -> None:
    url, _ca = server
    with pytest.raises(httpx.TransportError):
        httpx.get(url.replace("https://", "http://") + "/admin/identity-providers/names")


def test_curl_with_the_ca(server: tuple[str, Path]) -> None:
    url, ca = server
    out = subprocess.run(
        ["curl", "-s", "--cacert", str(ca), "-H", "Accept: application/vnd.appgate.peer-v22+json",
         url + "/admin/identity-providers/names"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert '"name":"local"' in out.stdout
