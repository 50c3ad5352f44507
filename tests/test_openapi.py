"""The shipped OpenAPI document against the live server.

schemathesis generates requests from it (each with a token of the stage its route takes, so
initialize answers 200 and its body is checked too) and checks that nothing answers 500 and
every response matches the document. Bodies schemathesis cannot reach (an accepted OTP, a
RADIUS Challenge, a Push) are collected from real flows and checked against the document here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection

from mock_radius.pytest_plugin import MockRadius
from tests.conftest import (
    ACCEPT,
    DEVICE_ID,
    LiveServer,
    http_call,
    http_login,
    radius_provider,
    server_process,
    totp_now,
)

SPEC_FILE = Path(__file__).parent.parent / "server" / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_FILE.read_text())
schema = schemathesis.openapi.from_path(str(SPEC_FILE))

FRAMING_HEADERS = {"content-length", "transfer-encoding", "connection", "host", "upgrade", "te"}
PARTIAL_TOKEN_ROUTES = {"/admin/authentication/otp/initialize", "/admin/authentication/otp"}


def _full_admin_token(live: LiveServer) -> str:
    partial = live.login("root", "root-pass", "service")["token"]
    token: str = live.call("GET", "/admin/authorization", token=partial).json()["token"]
    return token


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case: Any, live: LiveServer) -> None:
    headers = dict(ACCEPT)
    if case.path in PARTIAL_TOKEN_ROUTES:  # a TOTP user's partial token: initialize is a 200
        headers["Authorization"] = f"Bearer {live.login('alice', 'alice-pass')['token']}"
    elif case.path not in ("/admin/authentication", "/admin/login"):
        headers["Authorization"] = f"Bearer {_full_admin_token(live)}"
    # Headers that frame the HTTP message are the transport's, not the API's: schemathesis
    # may generate one (a `content-length: Hgq` made the head malformed, answered 400 by the
    # HTTP edge, which tests/test_edge_limits.py and tests/test_attacks.py cover).
    case.headers = {
        name: value
        for name, value in (case.headers or {}).items()
        if name.lower() not in FRAMING_HEADERS
    }
    # Every case is sent with a valid Accept header and a token, so a case that is "negative"
    # only because those headers are missing is not negative any more; the junk body tests in
    # test_errors.py cover rejection of bad input.
    case.call_and_validate(
        base_url=live.url, headers=headers, excluded_checks=[negative_data_rejection]
    )


def test_spec_lists_every_route(live: LiveServer) -> None:
    routes = {route.path.replace("{dn:dn}", "{distinguished-name}") for route in live.app.routes}
    assert routes == set(SPEC["paths"])


def test_login_example_in_spec_is_accepted(live: LiveServer) -> None:
    props = SPEC["components"]["schemas"]["LoginRequest"]["properties"]
    body = {name: prop["example"] for name, prop in props.items()}
    assert body["deviceId"] == DEVICE_ID
    response = httpx.post(live.url + "/admin/authentication", headers=ACCEPT, json=body)
    assert response.status_code == 200


# Real bodies against the document


def _inline(node: Any) -> Any:
    """The schema with every local $ref replaced by what it points at."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = SPEC
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _inline(target)
        return {k: _inline(v) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_inline(v) for v in node]
    return node


def _conforms(method: str, path: str, response: httpx.Response) -> None:
    documented = SPEC["paths"][path][method.lower()]["responses"][str(response.status_code)]
    documented = _inline(documented)
    if "content" not in documented:
        assert response.content == b""
        return
    body_schema = documented["content"]["application/json"]["schema"]
    jsonschema.validate(response.json(), body_schema, cls=jsonschema.Draft4Validator)


@pytest.mark.slow
def test_every_response_type_matches_the_document(mock: MockRadius, tmp_path: Path) -> None:
    config = {
        "storage": {"url": "sqlite:///./o.db", "encryptionKeyFile": "./o.key"},
        "identityProviders": [
            {"name": "local", "mfaProvider": "builtin",
             "users": [{"username": "alice", "password": "alice-pass"}]},
            {"name": "service", "users": [{"username": "bob", "password": "bob-pass"}]},
            {"name": "rc", "mfaProvider": "rc",
             "users": [{"username": "chris", "password": "chris-pass"}]},
            {"name": "ro", "mfaProvider": "ro",
             "users": [{"username": "olga", "password": "olga-pass"}]},
            {"name": "rp", "mfaProvider": "rp",
             "users": [{"username": "paula", "password": "paula-pass"}]},
        ],
        "mfaProviders": [
            {"name": "builtin", "type": "DefaultTimeBased"},
            radius_provider("rc", mock.port, timeout=2, mode="Challenge", useUserPassword=True,
                            authenticationProtocol="PAP"),
            radius_provider("ro", mock.port, timeout=2, mode="OneFactor"),
            radius_provider("rp", mock.port, timeout=2, mode="Push",
                            challengeSharedSecret="push-secret"),
        ],
    }  # fmt: skip
    init, otp, authz = (
        "/admin/authentication/otp/initialize",
        "/admin/authentication/otp",
        "/admin/authorization",
    )
    seen: dict[str, httpx.Response] = {}
    with server_process(config, tmp_path) as url, httpx.Client(timeout=10) as client:

        def call(path: str, token: str, body: Any = None, label: str = "") -> httpx.Response:
            response = http_call(client, url, path, token, body)
            _conforms("GET" if path == authz else "POST", path, response)
            seen[label or path] = response
            return response

        alice = http_login(client, url, "local", "alice", "alice-pass")
        secret = call(init, alice, label="Secret").json()["secret"]
        mfa = call(otp, alice, {"otp": totp_now(secret, time.time())}, "otp accepted")
        call(authz, mfa.json()["token"], label="full token")
        again = http_login(client, url, "local", "alice", "alice-pass")
        call(init, again, label="AlreadySeeded")
        chris = http_login(client, url, "rc", "chris", "chris-pass")
        call(init, chris, {"userPassword": "chris-pass"}, "Challenge")
        call(otp, chris, {"otp": "111111"}, "second round")
        call(otp, chris, {"otp": "222222"}, "accepted after two rounds")
        olga = http_login(client, url, "ro", "olga", "olga-pass")
        call(init, olga, label="OneFactor Challenge")
        paula = http_login(client, url, "rp", "paula", "paula-pass")
        call(init, paula, label="Push")
        full = client.post(url + "/admin/login", headers=ACCEPT, json={
            "providerName": "service", "username": "bob", "password": "bob-pass",
            "deviceId": DEVICE_ID})  # fmt: skip
        _conforms("POST", "/admin/login", full)
        call("/admin/authentication/logout", full.json()["token"], label="logout")
    assert [seen[k].json()["type"] for k in ("Secret", "AlreadySeeded", "Challenge", "Push")] == [
        "Secret", "AlreadySeeded", "Challenge", "Push"
    ]  # fmt: skip
    assert set(seen["Challenge"].json()) == {"type", "responseMessage", "state", "timeout"}
    assert set(seen["OneFactor Challenge"].json()) == {"type", "timeout"}
    assert seen["second round"].status_code == 401
    assert set(seen["second round"].json()) == {"id", "message", "reason", "state"}
    assert seen["accepted after two rounds"].json()["user"]["needTwoFactorAuth"] is False
    assert seen["logout"].status_code == 204


def test_the_document_is_strict_about_each_type() -> None:
    """A body of one type with a field of another does not conform (additionalProperties)."""
    initialize = _inline(SPEC["components"]["schemas"]["InitializeResponse"])
    jsonschema.validate({"type": "AlreadySeeded"}, initialize, cls=jsonschema.Draft4Validator)
    for wrong in (
        {"type": "AlreadySeeded", "secret": "ABC"},
        {"type": "Secret", "secret": "ABC"},  # no otpAuthUrl, no barcode
        {"type": "Push", "timeout": 6},  # no sendPassword
        {"type": "Challenge"},  # no timeout
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, initialize, cls=jsonschema.Draft4Validator)
