"""Every error status with its exact body shape, and junk input never producing a 500."""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appgate_mfa_server.app import create_app
from appgate_mfa_server.negotiation import accepted_version
from appgate_mfa_server.store.sqlite import SqliteStore
from tests.conftest import (
    ACCEPT,
    DEVICE_ID,
    REPO,
    FakeClock,
    LiveServer,
    base_config,
    serve_in_thread,
    settings_from,
)

ROUTES = [
    ("GET", "/admin/identity-providers/names"),
    ("POST", "/admin/authentication"),
    ("POST", "/admin/authentication/otp/initialize"),
    ("POST", "/admin/authentication/otp"),
    ("GET", "/admin/authorization"),
    ("POST", "/admin/logout"),
    ("GET", "/admin/otp/seeds"),
    ("DELETE", "/admin/otp/seeds/CN=alice,OU=local"),
    ("GET", "/admin/no-such-route"),
]


def _406(received: str) -> dict[str, Any]:
    return {
        "id": "not acceptable",
        "message": "Invalid 'Accept' header. Current version: "
        f"application/vnd.appgate.peer-v22+json, Received: {received}",
        "minSupportedVersion": 18,
        "maxSupportedVersion": 22,
    }


def _written_in_errors_py() -> set[tuple[int, str]]:
    """Every (status, id) that server/errors.py writes as constants."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse((REPO / "server" / "errors.py").read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ApiError":
            status, error_id = (getattr(arg, "value", None) for arg in node.args[:2])
            if isinstance(status, int) and isinstance(error_id, str):
                found.add((status, error_id))
    return found


def _documented_in_api_md() -> set[tuple[int, str]]:
    section = (REPO / "docs" / "api.md").read_text().split("## Errors", 1)[1].split("\n## ")[0]
    rows = re.findall(r"^\| (\d{3}) \| `([^`]+)` \|", section, re.MULTILINE)
    return {(int(status), error_id) for status, error_id in rows}


def test_the_errors_documented_are_the_errors_written_once_in_errors_py() -> None:
    """docs/api.md's table and server/errors.py, where every error of the API is written once,
    list the same errors (but test control's own, in server/test-control.yaml)."""
    test_control_only = {(409, "conflict"), (415, "unsupported media type")}
    assert _written_in_errors_py() - test_control_only == _documented_in_api_md()
    assert len(_documented_in_api_md()) >= 15  # the table was found and read


def test_v5_probe_on_authentication_reads_min_max(live: LiveServer) -> None:
    response = live.call(
        "POST",
        "/admin/authentication",
        headers={"Accept": "application/vnd.appgate.peer-v5+json"},
        json={"providerName": "local"},
    )
    assert response.status_code == 406
    assert response.json() == _406("application/vnd.appgate.peer-v5+json")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_checks_accept_before_auth(live: LiveServer, method: str, path: str) -> None:
    request = live.client.build_request(
        method, live.url + path, headers={"Authorization": "Bearer x"}
    )
    del request.headers["accept"]
    response = live.client.send(request)
    assert response.status_code == 406
    assert response.json() == _406("(none)")
    wrong = live.client.request(method, live.url + path, headers={"Accept": "application/json"})
    assert wrong.json() == _406("application/json")


@pytest.mark.parametrize("version", [18, 20, 22])
def test_supported_versions_pass(live: LiveServer, version: int) -> None:
    response = live.client.get(
        live.url + "/admin/identity-providers/names",
        headers={"Accept": f"application/vnd.appgate.peer-v{version}+json"},
    )
    assert response.status_code == 200


def test_accepted_version_parsing() -> None:
    assert accepted_version("application/vnd.appgate.peer-v22+json", 18, 22) == 22
    assert accepted_version("application/vnd.appgate.peer-v17+json", 18, 22) is None
    assert accepted_version("application/vnd.appgate.peer-v23+json", 18, 22) is None
    assert accepted_version("text/html, application/vnd.appgate.peer-v19+json", 18, 22) == 19
    assert accepted_version("application/vnd.appgate.peer-v20+json; q=0.9", 18, 22) == 20
    assert accepted_version("application/vnd.appgate.peer-v20+jsonx", 18, 22) is None
    assert accepted_version(None, 18, 22) is None


@given(st.text(max_size=200))
def test_accepted_version_never_raises(header: str) -> None:
    result = accepted_version(header, 18, 22)
    assert result is None or 18 <= result <= 22


def test_400_not_json_and_not_object(live: LiveServer) -> None:
    for content, message in [
        (b"{not json", "The request body is not valid JSON."),
        (b"[1, 2]", "The request body must be a JSON object."),
        (b"null", "The request body must be a JSON object."),
        (b'"text"', "The request body must be a JSON object."),
        (b"\xff\xfe", "The request body is not valid JSON."),
        (b"[" * 60_000, "The request body is not valid JSON."),
    ]:
        response = live.call("POST", "/admin/authentication", content=content)
        assert response.status_code == 400, content[:20]
        assert response.json() == {"id": "json error", "message": message}


def test_401_token_problems(live: LiveServer) -> None:
    expected = {"id": "token error", "message": "Token error. Login again."}
    for headers in [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer not-a-token"},
    ]:
        response = live.call("GET", "/admin/authorization", headers=headers)
        assert response.status_code == 401
        assert response.json() == expected


def test_401_comes_before_body_errors(live: LiveServer) -> None:
    response = live.call("POST", "/admin/authentication/otp", content=b"{bad")
    assert response.status_code == 401


def test_413_body_too_large(live: LiveServer) -> None:
    big = json.dumps({"providerName": "x" * 70_000}).encode()
    response = live.call("POST", "/admin/authentication", content=big)
    assert response.status_code == 413
    assert response.json() == {
        "id": "payload too large",
        "message": "The request body is larger than 65536 bytes.",
    }

    def chunks() -> Any:
        for _ in range(100):
            yield b" " * 1024

    streamed = live.client.post(
        live.url + "/admin/authentication", headers=ACCEPT, content=chunks()
    )
    assert streamed.status_code == 413


def _login_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "providerName": "local",
        "username": "alice",
        "password": "alice-pass",
        "deviceId": DEVICE_ID,
    }
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return body


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (_login_body(username=""), [{"field": "username", "message": "must not be empty"}]),
        (_login_body(password=None), [{"field": "password", "message": "must be a string"}]),
        (_login_body(username=...), [{"field": "username", "message": "is required"}]),
        (_login_body(deviceId="nope"), [{"field": "deviceId", "message": "must be a UUID"}]),
        (_login_body(providerName=7), [{"field": "providerName", "message": "must be a string"}]),
        (
            {},
            [
                {"field": "providerName", "message": "is required"},
                {"field": "deviceId", "message": "is required"},
                {"field": "username", "message": "is required"},
                {"field": "password", "message": "is required"},
            ],
        ),
    ],
)
def test_422_on_login(live: LiveServer, body: dict[str, Any], errors: list[Any]) -> None:
    response = live.call("POST", "/admin/authentication", json=body)
    assert response.status_code == 422
    assert response.json() == {
        "id": "validation error",
        "message": 'Request validation error. Check "errors" array for details.',
        "errors": errors,
    }


def test_unknown_provider_is_a_failed_login(live: LiveServer) -> None:
    response = live.call("POST", "/admin/authentication", json=_login_body(providerName="nope"))
    assert response.status_code == 401
    assert response.json()["reason"] == "Unknown identity provider."


def test_otp_no_body_and_empty_object_are_422(live: LiveServer) -> None:
    token = live.login("alice", "alice-pass")["token"]
    for content in [b"", b"{}"]:
        response = live.call("POST", "/admin/authentication/otp", token=token, content=content)
        assert response.status_code == 422
        assert response.json()["errors"] == [{"field": "otp", "message": "is required"}]
    for otp, message in [
        ("", "must not be empty"),
        (None, "must be a string"),
        (5, "must be a string"),
    ]:
        response = live.call("POST", "/admin/authentication/otp", token=token, json={"otp": otp})
        assert response.json()["errors"] == [{"field": "otp", "message": message}]


def test_initialize_body_is_optional_but_checked(live: LiveServer) -> None:
    token = live.login("alice", "alice-pass")["token"]
    for content in [b"", b"{}", b"  "]:
        response = live.call(
            "POST", "/admin/authentication/otp/initialize", token=token, content=content
        )
        assert response.status_code == 200
    bad = live.initialize(token, {"userPassword": ""})
    assert bad.status_code == 422
    assert bad.json()["errors"] == [{"field": "userPassword", "message": "must not be empty"}]
    assert live.initialize(token, {"userPassword": None}).status_code == 422


def test_404_and_405_are_json(live: LiveServer) -> None:
    missing = live.call("GET", "/admin/nothing")
    assert missing.status_code == 404
    assert missing.json() == {
        "id": "not found",
        "message": "The requested resource can not be found.",
    }
    wrong_method = live.call("DELETE", "/admin/authentication")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["id"] == "method not allowed"


class _BrokenStore(SqliteStore):
    async def get_token(self, token_hash: str) -> Any:
        raise RuntimeError("database is on fire; password=hunter2")


def test_500_has_no_trace_and_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_from(base_config(tmp_path), tmp_path)
    app = create_app(settings, clock=FakeClock(), store=_BrokenStore(str(tmp_path / "x.db")))
    url, server, thread = serve_in_thread(app)
    try:
        with caplog.at_level(logging.INFO):
            response = httpx.get(
                url + "/admin/authorization", headers={**ACCEPT, "Authorization": "Bearer t"}
            )
    finally:
        server.should_exit = True
        thread.join(10)
    assert response.status_code == 500
    assert response.json() == {"id": "unexpected error", "message": "Unexpected server side error."}
    from appgate_mfa_server.logs import JsonFormatter

    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any('"unexpected_error"' in line for line in lines)
    assert not any("hunter2" in line or "Traceback" in line for line in lines)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
body_dicts = st.fixed_dictionaries(
    {},
    optional={
        "providerName": json_values,
        "username": json_values,
        "password": json_values,
        "deviceId": json_values,
        "otp": json_values,
        "state": json_values,
        "userPassword": json_values,
    },
)
raw_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    body_dicts.map(lambda v: json.dumps(v).encode()),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(
        [
            "/admin/authentication",
            "/admin/authentication/otp/initialize",
            "/admin/authentication/otp",
        ]
    ),
    content=raw_bodies,
)
def test_junk_bodies_never_500(live: LiveServer, path: str, content: bytes) -> None:
    token = live._extra.get("token")
    if token is None:
        token = live._extra["token"] = live.login("dave", "dave-pass")["token"]
    response = live.call("POST", path, token=token, content=content)
    assert response.status_code in {200, 400, 401, 413, 422}, response.text
    body = response.json()
    if response.status_code != 200:
        assert isinstance(body["id"], str) and isinstance(body["message"], str)
    if response.status_code == 422:
        assert all(set(e) == {"field", "message"} for e in body["errors"])
