"""The test double (server.testControl) over real processes and real sockets: the virtual clock
moves TOTP steps, token expiry, lockout cooldowns and sealed RADIUS states; scripted faults
answer with the server's error shapes, late, or not at all; known seeds, reset and the journal;
and none of it exists without the flag."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from appgate_mfa_server.pytest_plugin import MfaServer, start_mfa_server
from mock_radius.pytest_plugin import start_mock_radius
from tests.conftest import (
    ACCEPT,
    base_config,
    http_call,
    http_login,
    mfa_server,
    radius_provider,
    totp_now,
)
from tests.tls_files import handshake_in_memory

T0 = 1_800_000_000  # a whole multiple of 30
SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # RFC 6238's test secret, base32
ALICE = "CN=alice,OU=local"
INIT, OTP, AUTHZ = (
    "/admin/authentication/otp/initialize",
    "/admin/authentication/otp",
    "/admin/authorization",
)
NAMES = "/admin/identity-providers/names"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MfaServer]:
    """One server for the module (a process start costs a second or two); reset per test."""
    started = start_mfa_server(base_config(Path()), tmp_path_factory.mktemp("double"))
    assert started.ready["testControl"] is True
    warning = next(json.loads(line) for line in started.log().splitlines()
                   if "test_control_on" in line)  # fmt: skip
    assert warning["level"] == "warning" and "for tests only" in warning["message"]
    yield started
    assert started.stop() == 0


@pytest.fixture
def double(server: MfaServer) -> MfaServer:
    server.reset()
    return server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as session:
        yield session


def _wrong_code(secret: str, when: float) -> str:
    """A code that is wrong at ``when``, drift window included."""
    valid = {totp_now(secret, when + offset) for offset in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The virtual clock


def test_the_clock_is_real_until_set_then_frozen_and_moved_only_by_advance(
    double: MfaServer,
) -> None:
    assert double.control.call("GET", "/_test/clock")["frozen"] is False
    assert double.clock.set(T0) == T0
    assert double.control.call("GET", "/_test/clock") == {"now": T0, "frozen": True}
    assert double.clock.advance(90) == T0 + 90
    assert double.clock.advance(-30.5) == T0 + 59.5
    double.clock.real()
    assert double.control.call("GET", "/_test/clock")["frozen"] is False


def test_a_code_oathtool_computes_for_the_clock_logs_in(
    double: MfaServer, client: httpx.Client
) -> None:
    double.clock.set(T0)
    double.seed(ALICE, SECRET)
    token = http_login(client, double.url, "local", "alice", "alice-pass")
    assert http_call(client, double.url, INIT, token).json() == {"type": "AlreadySeeded"}
    code = subprocess.run(
        ["oathtool", "--totp", "--base32", "-N", f"@{T0}", SECRET],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    mfa = http_call(client, double.url, OTP, token, {"otp": code})
    assert mfa.status_code == 200, mfa.text
    assert mfa.json()["expires"] == _iso(T0 + 3600)  # tokenLifetime 1h from the virtual now
    full = http_call(client, double.url, AUTHZ, mfa.json()["token"])
    assert full.status_code == 200
    assert full.json()["user"]["needTwoFactorAuth"] is False


def test_an_unverified_known_seed_is_the_secret_initialize_hands_out(
    double: MfaServer, client: httpx.Client
) -> None:
    double.seed(ALICE, SECRET.lower() + "====", verified=False)
    token = http_login(client, double.url, "local", "alice", "alice-pass")
    body = http_call(client, double.url, INIT, token).json()
    assert (body["type"], body["secret"]) == ("Secret", SECRET)


def test_advancing_past_the_token_lifetime_makes_the_token_401(
    double: MfaServer, client: httpx.Client
) -> None:
    double.clock.set(T0)
    partial = http_login(client, double.url, "service", "bob", "bob-pass")
    full = http_call(client, double.url, AUTHZ, partial).json()
    assert full["expires"] == _iso(T0 + 3600)
    double.clock.advance(3599)
    assert http_call(client, double.url, AUTHZ, full["token"]).status_code == 200
    double.clock.advance(1)
    expired = http_call(client, double.url, AUTHZ, full["token"])
    assert (expired.status_code, expired.json()["id"]) == (401, "token error")


def test_five_wrong_codes_lock_and_advancing_past_the_cooldown_unlocks(
    double: MfaServer, client: httpx.Client
) -> None:
    double.clock.set(T0)
    double.seed(ALICE, SECRET)
    token = http_login(client, double.url, "local", "alice", "alice-pass")
    wrong = _wrong_code(SECRET, T0)
    reasons = [
        http_call(client, double.url, OTP, token, {"otp": wrong}).json()["reason"] for _ in range(5)
    ]
    locked = "Too many failed attempts. Try again later."
    assert reasons == ["Invalid OTP."] * 4 + [locked]
    right = http_call(client, double.url, OTP, token, {"otp": totp_now(SECRET, T0)})
    assert (right.status_code, right.json()["reason"]) == (401, locked)
    double.clock.advance(59)  # cooldown 60 s
    still = http_call(client, double.url, OTP, token, {"otp": totp_now(SECRET, T0 + 59)})
    assert still.json()["reason"] == locked
    double.clock.advance(1)
    unlocked = http_call(client, double.url, OTP, token, {"otp": totp_now(SECRET, T0 + 60)})
    assert unlocked.status_code == 200, unlocked.text


@pytest.mark.slow
def test_a_sealed_radius_state_expires_on_the_virtual_clock(tmp_path: Path) -> None:
    mock = start_mock_radius(Path(__file__).parent.parent / "scenarios" / "challenge.yaml")
    config = {
        "storage": {"url": "sqlite:///./r.db", "encryptionKeyFile": "./r.key"},
        "identityProviders": [{"name": "rc", "mfaProvider": "rc",
                               "users": [{"username": "carol", "password": "carol-pass"}]}],
        "mfaProviders": [radius_provider("rc", mock.port, timeout=2, mode="Challenge",
                                         useUserPassword=True, authenticationProtocol="PAP")],
    }  # fmt: skip
    server = start_mfa_server(config, tmp_path)
    try:
        server.clock.set(T0)
        with httpx.Client(timeout=10) as client:
            token = http_login(client, server.url, "rc", "carol", "carol-pass")
            state = http_call(client, server.url, INIT, token, {"userPassword": "carol-pass"})
            server.clock.advance(60)  # the Access-Challenge's Session-Timeout
            late = http_call(client, server.url, OTP, token,
                             {"otp": "123456", "state": state.json()["state"]})  # fmt: skip
        assert late.status_code == 401
        assert late.json()["reason"] == "The state has expired. Initialize again."
    finally:
        server.stop()
        mock.stop()


# Faults


def test_a_500_on_initialize_answers_the_vendor_shape_once_then_the_real_answer(
    double: MfaServer, client: httpx.Client
) -> None:
    fault = double.faults.add("POST", INIT, status=500)
    assert fault["remaining"] == 1
    token = http_login(client, double.url, "local", "alice", "alice-pass")
    first = http_call(client, double.url, INIT, token)
    assert first.status_code == 500
    assert first.json() == {"id": "unexpected error", "message": "Unexpected server side error."}
    second = http_call(client, double.url, INIT, token)
    assert (second.status_code, second.json()["type"]) == (200, "Secret")
    assert double.faults.list() == []
    calls = [(e["path"], e["status"], e["fault"]) for e in double.journal()]
    assert calls == [
        ("/admin/authentication", 200, None),
        (INIT, 500, {"id": fault["id"], "status": 500}),
        (INIT, 200, None),
    ]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, {"id": "unavailable", "message": "The server is starting or stopping."}),
        (401, {"id": "token error", "message": "Token error. Login again."}),
        (406, {"id": "not acceptable", "minSupportedVersion": 18, "maxSupportedVersion": 22,
               "message": "Invalid 'Accept' header. Current version: "
               "application/vnd.appgate.peer-v22+json, Received: "
               "application/vnd.appgate.peer-v22+json"}),
        (429, {"id": "too many requests", "message": "Too Many Requests."}),
    ],
)  # fmt: skip
def test_a_status_without_a_body_has_the_servers_error_shape(
    double: MfaServer, client: httpx.Client, status: int, body: dict[str, Any]
) -> None:
    double.faults.add("GET", NAMES, status=status)
    response = client.get(double.url + NAMES, headers=ACCEPT)
    assert (response.status_code, response.json()) == (status, body)
    assert response.headers["content-type"] == "application/json"


def test_a_scripted_body_headers_times_and_prefix(double: MfaServer, client: httpx.Client) -> None:
    double.faults.add("*", "/admin/*", status=503, body={"id": "maintenance"},
                      headers={"Retry-After": "7"}, times=2)  # fmt: skip
    assert [f["remaining"] for f in double.faults.list()] == [2]
    first = client.get(double.url + NAMES, headers=ACCEPT)
    second = client.post(double.url + "/admin/authentication", headers=ACCEPT)
    assert [r.status_code for r in (first, second)] == [503, 503]
    assert (first.json(), first.headers["retry-after"]) == ({"id": "maintenance"}, "7")
    assert client.get(double.url + NAMES, headers=ACCEPT).status_code == 200
    double.faults.add("GET", NAMES, status=204)
    empty = client.get(double.url + NAMES, headers=ACCEPT)
    assert (empty.status_code, empty.content) == (204, b"")
    kept = double.faults.add("GET", "/elsewhere", status=500)
    double.faults.add("GET", "/elsewhere2", status=500)
    double.faults.remove(kept["id"])
    assert [f["path"] for f in double.faults.list()] == ["/elsewhere2"]
    double.faults.clear()
    assert double.faults.list() == []


@pytest.mark.slow
def test_a_delay_holds_the_real_answer_without_holding_other_requests(
    double: MfaServer, client: httpx.Client
) -> None:
    double.faults.add("GET", NAMES, delay=2)
    delayed: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: delayed.append(httpx.get(double.url + NAMES, headers=ACCEPT, timeout=10))
    )
    thread.start()
    deadline = time.monotonic() + 10
    while double.faults.list() and time.monotonic() < deadline:
        pass  # until the delayed request has taken its fault (a few ms)
    other = client.get(double.url + AUTHZ, headers=ACCEPT)
    assert other.status_code == 401 and not delayed  # answered while the other still waits
    thread.join(10)
    assert delayed[0].status_code == 200 and "data" in delayed[0].json()
    journal = double.journal()
    assert [e["path"] for e in journal] == [AUTHZ, NAMES]  # in the order they were answered
    # a lower bound, less the event loop's timer resolution: uvloop's timers count whole
    # milliseconds from a loop time taken at the start of an iteration, so a 2 s sleep can end
    # a fraction of a millisecond early by perf_counter (1999.58 ms was seen)
    assert journal[1]["fault"]["delay"] == 2 and journal[1]["ms"] >= 2000 - 5
    double.faults.add("GET", NAMES, delay=5)
    with pytest.raises(httpx.ReadTimeout):  # what a client's own timeout sees
        httpx.get(double.url + NAMES, headers=ACCEPT, timeout=0.5)


def test_reset_empty_and_garbage_as_an_http_client_sees_them(
    double: MfaServer, client: httpx.Client
) -> None:
    double.faults.add("GET", NAMES, fault="reset")
    with pytest.raises(httpx.ReadError, match="Connection reset by peer"):
        client.get(double.url + NAMES, headers=ACCEPT)
    double.faults.add("GET", NAMES, fault="empty")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        client.get(double.url + NAMES, headers=ACCEPT)
    double.faults.add("GET", NAMES, fault="garbage")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(double.url + NAMES, headers=ACCEPT)
    assert client.get(double.url + NAMES, headers=ACCEPT).status_code == 200
    faults = [(e["status"], e["fault"] and e["fault"]["fault"]) for e in double.journal()]
    assert faults == [(None, "reset"), (None, "empty"), (None, "garbage"), (200, None)]


def _exchange(server: MfaServer, context: ssl.SSLContext | None = None) -> bytes:
    """What a client reads after sending one request, until the server closes; the bytes
    under TLS are decrypted with a memory BIO, so the TCP socket is read directly and a reset
    raises ConnectionResetError (Python's SSLSocket would report it as a clean EOF)."""
    request = (f"GET {NAMES} HTTP/1.1\r\nHost: x\r\nAccept: {ACCEPT['Accept']}\r\n"
               "Connection: close\r\n\r\n").encode()  # fmt: skip
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        if context is None:
            sock.sendall(request)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            return received
        tls, incoming, outgoing = handshake_in_memory(sock, context)
        tls.write(request)
        sock.sendall(outgoing.read())
        plain = b""
        while data := sock.recv(65536):
            incoming.write(data)
            try:
                while chunk := tls.read(65536):
                    plain += chunk
            except ssl.SSLWantReadError:
                continue
            break  # read() gave b"": the server's close_notify
        return plain


def _check_the_wire(server: MfaServer, context: ssl.SSLContext | None = None) -> None:
    server.faults.add("GET", NAMES, fault="reset")
    with pytest.raises(ConnectionResetError):
        _exchange(server, context)
    server.faults.add("GET", NAMES, fault="empty")
    assert _exchange(server, context) == b""  # closed, no answer
    server.faults.add("GET", NAMES, fault="garbage")
    junk = _exchange(server, context)
    assert len(junk) == 256 and not junk.startswith(b"H")
    assert _exchange(server, context).startswith(b"HTTP/1.1 200 ")  # then the real answer


def test_the_bytes_on_the_wire(double: MfaServer) -> None:
    _check_the_wire(double)


def test_connection_faults_under_tls(tmp_path: Path) -> None:
    server = start_mfa_server(base_config(tmp_path), tmp_path, tls=True)
    try:
        assert server.certificate is not None
        context = ssl.create_default_context(cafile=server.certificate)
        _check_the_wire(server, context)  # the reset beneath TLS, the bytes inside it
        with httpx.Client(verify=context, timeout=10) as client:
            server.faults.add("GET", NAMES, fault="empty")
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                client.get(server.url + NAMES, headers=ACCEPT)
            assert client.get(server.url + NAMES, headers=ACCEPT).status_code == 200
    finally:
        server.stop()


# Journal, reset, input errors


def test_the_journal_holds_no_password_otp_secret_or_token(
    double: MfaServer, client: httpx.Client
) -> None:
    double.clock.set(T0)
    double.seed(ALICE, SECRET)
    token = http_login(client, double.url, "local", "alice", "alice-pass")
    code = totp_now(SECRET, T0)
    mfa = http_call(client, double.url, OTP, token, {"otp": code}).json()["token"]
    client.get(double.url + NAMES, headers={"Accept": "text/html"})
    entries = double.journal()
    text = json.dumps(entries)
    for secret in ("alice-pass", code, SECRET, token, mfa):
        assert secret not in text
    assert [(e["method"], e["path"], e["status"], e["apiVersion"]) for e in entries] == [
        ("POST", "/admin/authentication", 200, 22),
        ("POST", OTP, 200, 22),
        ("GET", NAMES, 406, None),
    ]
    assert entries[2]["accept"] == "text/html" and entries[0]["time"] == T0
    assert set(entries[0]) == {"seq", "time", "method", "path", "status", "apiVersion",
                               "accept", "fault", "ms"}  # fmt: skip
    assert double.journal(since=entries[1]["seq"]) == entries[2:]
    double.clear_journal()
    assert double.journal() == []


def test_reset_wipes_seeds_tokens_lockouts_faults_clock_and_journal(
    double: MfaServer, client: httpx.Client
) -> None:
    double.clock.set(T0)
    double.seed(ALICE, SECRET)
    token = http_login(client, double.url, "local", "alice", "alice-pass")
    for _ in range(5):
        http_call(client, double.url, OTP, token, {"otp": _wrong_code(SECRET, T0)})
    double.faults.add("GET", "/admin/x", status=500)
    double.reset()
    assert double.faults.list() == [] and double.journal() == []
    assert double.control.call("GET", "/_test/clock")["frozen"] is False
    assert http_call(client, double.url, AUTHZ, token).status_code == 401
    fresh = http_login(client, double.url, "local", "alice", "alice-pass")
    body = http_call(client, double.url, INIT, fresh).json()
    assert body["type"] == "Secret" and body["secret"] != SECRET  # the known seed is gone
    # the lock (until T0 + 60, later than the real now) is gone too
    code = totp_now(body["secret"], time.time())
    accepted = http_call(client, double.url, OTP, fresh, {"otp": code})
    assert accepted.status_code == 200, accepted.text
    assert [e["path"] for e in double.journal()] == [AUTHZ, "/admin/authentication", INIT, OTP]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/_test/clock", {"now": -1}, 422, "now"),
        ("POST", "/_test/clock", {"now": 5, "advance": 5}, 422, "now"),
        ("POST", "/_test/clock", {}, 422, "now"),
        ("POST", "/_test/clock", {"advance": "5"}, 422, "advance"),
        ("POST", "/_test/faults", {"method": "GET", "path": "/_test/clock", "status": 500},
         422, "path"),
        ("POST", "/_test/faults", {"method": "GET", "path": "/a", "status": 500, "fault": "reset"},
         422, "fault"),
        ("POST", "/_test/faults", {"method": "GET", "path": "/a", "status": 500, "tims": 2},
         422, "tims"),
        ("POST", "/_test/faults", {"method": "GET", "path": "/a"}, 422, "status"),
        ("POST", "/_test/faults", {"method": "GET", "path": "/a", "delay": 600}, 422, "delay"),
        ("POST", "/_test/faults", {"method": "GET", "path": "/a", "status": 500,
                                   "headers": {"Content-Length": "9"}},
         422, "headers.Content-Length"),
        ("PUT", "/_test/seeds/CN=alice,OU=local", {"secret": "not base32!"}, 422, "secret"),
        ("PUT", "/_test/seeds/CN=alice,OU=local", {"secret": "ABCD"}, 422, "secret"),
        ("PUT", "/_test/seeds/CN=bob,OU=service", {"secret": SECRET}, 422, "distinguished-name"),
        ("PUT", "/_test/seeds/CN=nobody,OU=local", {"secret": SECRET}, 404, None),
        ("GET", "/_test/journal?since=x", None, 422, "since"),
        ("GET", "/_test/nothing", None, 404, None),
        ("DELETE", "/_test/clock", None, 405, None),
        ("DELETE", "/_test/faults/999", None, 404, None),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_error(
    double: MfaServer, client: httpx.Client, method: str, path: str, body: Any, status: int,
    field: str | None,
) -> None:  # fmt: skip
    response = client.request(method, double.url + path, json=body)
    assert response.status_code == status, response.text
    if field is not None:
        assert [e["field"] for e in response.json()["errors"]] == [field]
    assert response.json()["id"]
    assert double.faults.list() == []


def test_a_body_that_is_not_a_json_object_is_a_400(double: MfaServer, client: httpx.Client) -> None:
    said_json = {"Content-Type": "application/json"}
    for content in (b"[1]", b"{", b'{"now": NaN}'):
        response = client.post(double.url + "/_test/clock", content=content, headers=said_json)
        assert response.status_code in (400, 422), content
        assert response.json()["id"] in ("json error", "validation error")
    response = client.post(double.url + "/_test/clock", content=b"[1]", headers=said_json)
    assert response.json()["id"] == "json error"


# Only for requests no web page can make


def _raw(server: MfaServer, method: str, path: str, headers: dict[str, str],
         body: bytes = b"") -> tuple[int, dict[str, Any]]:  # fmt: skip
    """One request with exactly these headers (Host included), over a socket of its own."""
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()),
             f"Content-Length: {len(body)}", "Connection: close", "", ""]  # fmt: skip
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload) if payload else {}


def test_a_foreign_host_or_origin_or_a_body_that_is_not_json_is_refused_and_does_nothing(
    double: MfaServer,
) -> None:
    """DNS rebinding (a page of evil.example whose name now resolves to 127.0.0.1) and
    cross-site requests (a form or text/plain POST from any page) reach loopback too."""
    double.clock.set(T0)
    double.seed(ALICE, SECRET)
    here = f"127.0.0.1:{double.port}"
    json_type = {"Content-Type": "application/json"}
    clock = json.dumps({"now": 0}).encode()
    for host in ("evil.example", f"evil.example:{double.port}", "127.0.0.1.evil.example",
                 "localhost.evil.example", "", "[::1]x", f"{here}, {here}"):  # fmt: skip
        assert _raw(double, "POST", "/_test/clock", {"Host": host, **json_type}, clock) == (
            403, {"id": "forbidden",
                  "message": "/_test/ answers only requests for a loopback host name."},
        )  # fmt: skip
        assert _raw(double, "GET", "/_test/journal", {"Host": host})[0] == 403  # no reading
        assert _raw(double, "POST", "/_test/reset", {"Host": host})[0] == 403
    for origin in ("http://evil.example", f"http://evil.example:{double.port}", "null",
                   "https://127.0.0.1.evil.example"):  # fmt: skip
        status, body = _raw(double, "POST", "/_test/reset", {"Host": here, "Origin": origin})
        assert (status, body["id"]) == (403, "forbidden"), origin
        assert "another site" in body["message"]
    for content_type in ("text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", "application/jsonx"):  # fmt: skip
        headers = {"Host": here, "Content-Type": content_type}
        assert _raw(double, "POST", "/_test/clock", headers, clock) == (
            415, {"id": "unsupported media type", "message": "Bodies sent to /_test/ must be JSON."}
        )  # fmt: skip
        assert _raw(double, "POST", "/_test/reset", headers)[0] == 415  # even without a body
    assert _raw(double, "POST", "/_test/clock", {"Host": here}, clock)[0] == 415  # no type
    assert double.clock.now() == T0  # nothing of it acted: the clock is where it was set
    assert double.journal() == []  # and no request was journaled (they were all /_test/)
    token = http_login(httpx, double.url, "local", "alice", "alice-pass")
    assert http_call(httpx, double.url, INIT, token).json() == {"type": "AlreadySeeded"}
    refusals = [json.loads(line) for line in double.log().splitlines()
                if "test_control_refused" in line]  # fmt: skip
    assert {r["status"] for r in refusals} == {403, 415}


def test_loopback_clients_without_a_page_behind_them_are_served(double: MfaServer) -> None:
    """curl, the plugin's urllib client, a script: loopback Host names and addresses with any
    port, JSON bodies, an Origin only when it is loopback too. The API itself takes any Host:
    it is what the client under test talks to."""
    port = double.port
    for host in ("localhost", f"localhost:{port}", "LOCALHOST.", "127.0.0.1",
                 f"127.0.0.2:{port}", "127.255.0.9:1", "[::1]", f"[::1]:{port}"):  # fmt: skip
        assert _raw(double, "GET", "/_test/clock", {"Host": host}) == (
            200, {"now": pytest.approx(time.time(), abs=60), "frozen": False}
        ), host  # fmt: skip
    headers = {"Host": f"127.0.0.1:{port}", "Origin": "http://localhost:3000",
               "Content-Type": "application/json; charset=utf-8"}  # fmt: skip
    assert _raw(double, "POST", "/_test/clock", headers, b'{"now": 1800000000}')[0] == 200
    assert double.clock.now() == T0
    names = _raw(double, "GET", NAMES, {"Host": "evil.example", **ACCEPT})
    assert names[0] == 200 and names[1]["data"][0]["name"] == "local"


def test_allow_remote_adds_addresses_and_the_allowed_host_names(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    allowed = ["mfa-server", "mfa.test.example."]
    config["server"]["testControl"] = {"enabled": True, "allowRemote": True,
                                       "allowedHosts": allowed}  # fmt: skip
    server = start_mfa_server(config, tmp_path)
    try:
        for host in ("mfa-server:8443", "MFA.test.example", "192.0.2.10:8443", "[2001:db8::1]"):
            assert _raw(server, "GET", "/_test/clock", {"Host": host})[0] == 200, host
        for host in ("evil.example", "mfa-server.evil.example", "test.example"):
            assert _raw(server, "GET", "/_test/clock", {"Host": host})[0] == 403, host
        origin = {"Host": "mfa-server", "Origin": "http://evil.example"}
        assert _raw(server, "GET", "/_test/clock", origin)[0] == 403
    finally:
        server.stop()


# Off by default, and refused where it would be dangerous


@pytest.mark.slow
def test_without_the_flag_every_test_path_is_404(tmp_path: Path) -> None:
    server = start_mfa_server(base_config(tmp_path), tmp_path, test_control=False)
    try:
        with httpx.Client(timeout=10, headers=ACCEPT) as client:
            for method, path in [("GET", "/_test/clock"), ("POST", "/_test/clock"),
                                 ("POST", "/_test/faults"), ("GET", "/_test/journal"),
                                 ("PUT", "/_test/seeds/CN=alice,OU=local"),
                                 ("POST", "/_test/reset"), ("GET", "/_test/")]:  # fmt: skip
                response = client.request(method, server.url + path, json={"now": 1})
                assert (response.status_code, response.json()["id"]) == (404, "not found")
        assert server.ready["testControl"] is False
        assert "test_control_on" not in server.log()
    finally:
        server.stop()


def _refused_start(args: list[str], config: dict[str, Any], folder: Path) -> str:
    path = folder / "refused.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "appgate_mfa_server", "--config", str(path),
                           *args], capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    return done.stderr


@pytest.mark.slow
def test_a_start_that_would_expose_the_control_or_split_its_state_is_refused(
    tmp_path: Path,
) -> None:
    config = base_config(tmp_path)
    config["server"]["testControl"] = True
    remote = _refused_start(["--host", "0.0.0.0", "--port", "0"], config, tmp_path)
    assert "0.0.0.0 is not a loopback address" in remote and "allowRemote" in remote
    workers = _refused_start(["--workers", "2", "--port", "0"], config, tmp_path)
    assert "testControl needs workers: 1" in workers
    config["server"]["workers"] = 2
    (tmp_path / "refused.yaml").write_text(yaml.safe_dump(config))
    checked = subprocess.run(
        [sys.executable, "-m", "appgate_mfa_server", "check-config",
         str(tmp_path / "refused.yaml")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert checked.returncode == 1
    assert "server.testControl: testControl needs workers: 1" in checked.stderr


@pytest.mark.slow
def test_allow_remote_lets_it_listen_on_every_address(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    config["server"]["testControl"] = {"enabled": False, "allowRemote": True}
    server = start_mfa_server(config, tmp_path, extra_args=("--host", "0.0.0.0"))
    try:
        assert server.host == "0.0.0.0"
        assert server.clock.set(T0) == T0  # the flag enabled it; allowRemote let it start
    finally:
        server.stop()


# A database of its own


def _start_and_stop(args: list[str], folder: Path, env: dict[str, str] | None = None) -> str:
    """Start `mfa-server` with ``args``, log in once so its database holds something, stop
    it; returns its ready line's testControl."""
    with mfa_server(args, folder, env) as (url, _process, ready):
        http_login(httpx, url, "local", "alice", "alice-pass")
    return str(ready["testControl"])


def _refused(args: list[str], folder: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "appgate_mfa_server", *args, "--port", "0"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and done.stdout == "", done
    assert "Traceback" not in done.stderr
    return done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_test_control_uses_only_a_database_it_created_and_keeps_it_to_itself(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    """A database a server without test control made (production, say) is refused by a
    server with test control, before anything listens; the one test control made is refused
    by a server without it, so a seed or token set through /_test/ never reaches one."""
    if backend == "sqlite":
        production = "sqlite:///./prod.db"
        own = "sqlite:///./own.db"
        shown = f"sqlite:///{tmp_path / 'prod.db'}"
    else:
        url: str = request.getfixturevalue("postgres_url")
        with_password = url.replace("postgresql://postgres@", "postgresql://postgres:pw-x7q@")
        production = with_password
        own = _another_database(url, request).replace("postgres@", "postgres:pw-x7q@")
        shown = url.replace("postgres@", "")
    config = base_config(tmp_path)
    config["storage"]["url"] = production
    (tmp_path / "prod.yaml").write_text(yaml.safe_dump(config))
    config["storage"]["url"] = own
    (tmp_path / "own.yaml").write_text(yaml.safe_dump(config))
    prod_args, own_args = (
        ["--config", str(tmp_path / "prod.yaml")],
        ["--config", str(tmp_path / "own.yaml")],
    )
    assert _start_and_stop(prod_args, tmp_path) == "False"
    refused = _refused([*prod_args, "--test-control"], tmp_path)
    assert f"test control needs a database of its own, and {shown} was not created" in refused
    assert "pw-x7q" not in refused
    assert _start_and_stop([*own_args, "--test-control"], tmp_path) == "True"
    assert _start_and_stop([*own_args, "--test-control"], tmp_path) == "True"  # its own again
    refused = _refused(own_args, tmp_path)
    assert "was created by a server with test control" in refused and "pw-x7q" not in refused
    assert _start_and_stop(prod_args, tmp_path) == "False"  # production is untouched


def _another_database(url: str, request: pytest.FixtureRequest) -> str:
    """A new, empty database next to ``url``'s, dropped after the test."""
    import psycopg

    name = url.rsplit("/", 1)[1] + "_own"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")

    request.addfinalizer(drop)
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.mark.slow
def test_the_demo_data_of_a_plain_start_is_refused_with_the_way_out(tmp_path: Path) -> None:
    """`mfa-server` made ./data; `mfa-server --test-control` then says what to do."""
    env = {k: v for k, v in os.environ.items() if k != "MFA_SERVER_CONFIG"}
    demo = ["--no-mock-radius"]
    assert _start_and_stop(demo, tmp_path, env) == "False"
    refused = _refused([*demo, "--test-control"], tmp_path, env)
    assert f"sqlite:///{tmp_path / 'data' / 'mfa.db'} was not created by a server with test " \
        "control" in refused  # fmt: skip
    assert "another --data-dir" in refused
    test_data = [*demo, "--test-control", "--data-dir", "data-test"]
    assert _start_and_stop(test_data, tmp_path, env) == "True"
