"""The whole login flow over real HTTP with the built-in TOTP provider."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import sqlite3
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import zxingcpp
from PIL import Image

from tests.conftest import LiveServer, totp_now

BASE32 = re.compile(r"^[A-Z2-7]+$")


def enrol(
    live: LiveServer, username: str = "alice", password: str | None = None
) -> tuple[str, str]:
    """Log in, initialize, and return (partial token, secret)."""
    login = live.login(username, password or f"{username}-pass")
    response = live.initialize(login["token"])
    assert response.status_code == 200
    return login["token"], response.json()["secret"]


def test_identity_provider_names(live: LiveServer) -> None:
    response = live.call("GET", "/admin/identity-providers/names")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "data": [
            {"name": "local", "type": "Credentials"},
            {"name": "service", "type": "Credentials"},
        ]
    }


def test_login_gives_partial_token_then_412(live: LiveServer) -> None:
    body = live.login("alice", "alice-pass")
    assert body["user"] == {
        "name": "alice",
        "needTwoFactorAuth": True,
        "canAccessAuditLogs": False,
        "privileges": [],
    }
    assert len(base64.urlsafe_b64decode(body["token"] + "=")) == 32  # 256 random bits
    assert body["expires"] == "2027-01-15T09:00:00Z"  # START_TIME + 1h token lifetime
    response = live.call("GET", "/admin/authorization", token=body["token"])
    assert response.status_code == 412
    assert response.json() == {
        "id": "mfa required",
        "message": "Multi-factor authentication is required before authorization.",
    }


def test_bad_credentials(live: LiveServer) -> None:
    for username, password in [("alice", "wrong"), ("nobody", "alice-pass")]:
        response = live.call(
            "POST",
            "/admin/authentication",
            json={
                "providerName": "local",
                "username": username,
                "password": password,
                "deviceId": "4c07bc67-57ea-42dd-b702-c2d6c45419fc",
            },
        )
        assert response.status_code == 401
        assert response.json() == {
            "id": "authentication failed",
            "message": "Authentication failed.",
            "reason": "Invalid username or password.",
        }


def test_secret_response_fields(live: LiveServer) -> None:
    login = live.login("alice", "alice-pass")
    response = live.initialize(login["token"])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"type", "secret", "otpAuthUrl", "barcode"}
    assert body["type"] == "Secret"
    assert BASE32.match(body["secret"]) and len(body["secret"]) == 32  # 160 bits
    assert body["otpAuthUrl"] == (
        f"otpauth://totp/alice@local@controller.test?secret={body['secret']}&issuer=Appgate%20SDP"
    )
    parts = urlsplit(body["otpAuthUrl"])
    assert parse_qs(parts.query) == {"secret": [body["secret"]], "issuer": ["Appgate SDP"]}


def test_barcode_is_a_jpeg_that_decodes_to_the_url(live: LiveServer) -> None:
    login = live.login("alice", "alice-pass")
    body = live.initialize(login["token"]).json()
    jpeg = base64.b64decode(body["barcode"], validate=True)
    assert jpeg[:3] == b"\xff\xd8\xff"
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    decoded = zxingcpp.read_barcodes(image)
    assert [d.text for d in decoded] == [body["otpAuthUrl"]]
    assert decoded[0].format == zxingcpp.BarcodeFormat.QRCode


def test_second_initialize_returns_same_secret(live: LiveServer) -> None:
    token, secret = enrol(live)
    again = live.initialize(token).json()
    assert again["type"] == "Secret"
    assert again["secret"] == secret
    other_login = live.login("alice", "alice-pass")
    assert live.initialize(other_login["token"]).json()["secret"] == secret


def test_full_flow_then_already_seeded(live: LiveServer) -> None:
    token, secret = enrol(live)
    response = live.otp(token, totp_now(secret, live.clock.now))
    assert response.status_code == 200, response.text
    mfa = response.json()
    assert mfa["user"]["needTwoFactorAuth"] is False
    assert mfa["token"] != token
    # the partial token was replaced
    assert live.call("GET", "/admin/authorization", token=token).status_code == 401
    full = live.call("GET", "/admin/authorization", token=mfa["token"])
    assert full.status_code == 200
    full_token = full.json()["token"]
    assert full_token != mfa["token"]
    assert full.json()["user"]["needTwoFactorAuth"] is False
    # a full token answers itself; the MFA token is spent
    again = live.call("GET", "/admin/authorization", token=full_token)
    assert again.status_code == 200 and again.json()["token"] == full_token
    assert live.call("GET", "/admin/authorization", token=mfa["token"]).status_code == 401
    # next login: the seed is verified
    live.clock.advance(30)
    second = live.login("alice", "alice-pass")
    assert live.initialize(second["token"]).json() == {"type": "AlreadySeeded"}
    code = totp_now(secret, live.clock.now)
    assert live.otp(second["token"], code).status_code == 200


def test_user_without_mfa_is_authorized_directly(live: LiveServer) -> None:
    login = live.login("bob", "bob-pass", provider="service")
    assert login["user"]["needTwoFactorAuth"] is False
    full = live.call("GET", "/admin/authorization", token=login["token"])
    assert full.status_code == 200
    assert full.json()["user"]["needTwoFactorAuth"] is False
    # the vendor's CLI asks twice with the partial token: each answer is a new full token
    again = live.call("GET", "/admin/authorization", token=login["token"])
    assert again.status_code == 200 and again.json()["token"] != full.json()["token"]
    assert (
        live.call("POST", "/admin/authentication/logout", token=full.json()["token"]).status_code
        == 204
    )
    for spent in (login["token"], full.json()["token"], again.json()["token"]):
        assert live.call("GET", "/admin/authorization", token=spent).status_code == 401
    login = live.login("bob", "bob-pass", provider="service")
    full = live.call("GET", "/admin/authorization", token=login["token"])
    # nothing to initialize for this user
    response = live.initialize(full.json()["token"])
    assert response.status_code == 401


def test_wrong_stage_tokens_are_401(live: LiveServer) -> None:
    token, secret = enrol(live)
    # a partial token cannot list seeds
    assert live.call("GET", "/admin/otp/seeds", token=token).status_code == 401
    mfa = live.otp(token, totp_now(secret, live.clock.now)).json()["token"]
    # an MFA token cannot initialize or verify again
    assert live.initialize(mfa).status_code == 401
    live.clock.advance(30)
    assert live.otp(mfa, totp_now(secret, live.clock.now)).status_code == 401


def test_drift_window_one_step_each_side(live: LiveServer) -> None:
    token, secret = enrol(live)
    live.clock.advance(300)
    now = live.clock.now
    assert live.otp(token, totp_now(secret, now - 60)).status_code == 401  # two steps back
    assert live.otp(token, totp_now(secret, now + 60)).status_code == 401  # two steps ahead
    assert live.otp(token, totp_now(secret, now - 30)).status_code == 200  # one step back


def test_replayed_code_is_refused(live: LiveServer) -> None:
    token, secret = enrol(live)
    code = totp_now(secret, live.clock.now)
    assert live.otp(token, code).status_code == 200
    second = live.login("alice", "alice-pass")
    response = live.otp(second["token"], code)
    assert response.status_code == 401
    assert response.json()["reason"] == "Invalid OTP."
    # an older code inside the window is refused too: steps only move forward
    older = totp_now(secret, live.clock.now - 30)
    assert live.otp(second["token"], older).status_code == 401
    live.clock.advance(30)
    assert live.otp(second["token"], totp_now(secret, live.clock.now)).status_code == 200


def test_otp_before_initialize(live: LiveServer) -> None:
    login = live.login("dave", "dave-pass")
    response = live.otp(login["token"], "123456")
    assert response.status_code == 401
    assert response.json()["reason"] == "No OTP seed for this user. Initialize MFA first."


def test_logout_revokes_every_token_of_the_session(live: LiveServer) -> None:
    token, secret = enrol(live)
    mfa = live.otp(token, totp_now(secret, live.clock.now)).json()["token"]
    full = live.call("GET", "/admin/authorization", token=mfa).json()["token"]
    response = live.call("POST", "/admin/logout", token=full)
    assert response.status_code == 204
    assert response.content == b""
    for spent in (token, mfa, full):
        assert live.call("GET", "/admin/authorization", token=spent).status_code == 401
    assert live.call("POST", "/admin/logout", token=full).status_code == 401


def test_logout_with_partial_token(live: LiveServer) -> None:
    login = live.login("alice", "alice-pass")
    assert live.call("POST", "/admin/logout", token=login["token"]).status_code == 204
    assert live.initialize(login["token"]).status_code == 401


def test_expired_token(live: LiveServer) -> None:
    login = live.login("bob", "bob-pass", provider="service")
    live.clock.advance(3600)
    response = live.call("GET", "/admin/authorization", token=login["token"])
    assert response.status_code == 401
    assert response.json() == {"id": "token error", "message": "Token error. Login again."}


def test_seed_is_encrypted_at_rest(live: LiveServer, tmp_path: Path) -> None:
    _token, secret = enrol(live)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("mfa.db*"))
    assert secret.encode() not in raw
    assert base64.b32decode(secret + "=" * (-len(secret) % 8)) not in raw
    with sqlite3.connect(tmp_path / "mfa.db") as db:
        (blob,) = db.execute("SELECT secret_blob FROM seeds").fetchone()
    assert len(blob) == 12 + 32 + 16  # nonce + secret + GCM tag
    assert (tmp_path / "seed.key").stat().st_mode & 0o777 == 0o600


def test_only_a_hash_of_each_token_is_stored(live: LiveServer, tmp_path: Path) -> None:
    """A copy of the database must not hand out working tokens; session ids are 128 bits."""
    tokens = [live.login("alice", "alice-pass")["token"] for _ in range(3)]
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("mfa.db*"))
    assert not any(token.encode() in raw for token in tokens)
    with sqlite3.connect(tmp_path / "mfa.db") as db:
        stored = {row[0]: row[1] for row in db.execute("SELECT token_hash, session_id FROM tokens")}
    assert set(stored) == {hashlib.sha256(token.encode()).hexdigest() for token in tokens}
    assert all(re.fullmatch(r"[0-9a-f]{32}", session) for session in stored.values())
    assert len(set(stored.values())) == 3


def test_seed_admin_routes(live: LiveServer) -> None:
    enrol(live, "alice")
    enrol(live, "dave")
    root = live.call(
        "GET", "/admin/authorization", token=live.login("root", "root-pass", "service")["token"]
    ).json()["token"]
    listing = live.call("GET", "/admin/otp/seeds", token=root)
    assert listing.status_code == 200
    assert {k: v for k, v in listing.json().items() if k != "data"} == {
        "range": "0-2/2",
        "orderBy": "userDistinguishedName",
        "descending": False,
        "filterBy": [],
    }  # the vendor's paginated list; "query" only when one was given
    assert listing.json()["data"] == [
        {
            "userDistinguishedName": "CN=alice,OU=local",
            "username": "alice",
            "providerName": "local",
            "verified": False,
        },
        {
            "userDistinguishedName": "CN=dave,OU=local",
            "username": "dave",
            "providerName": "local",
            "verified": False,
        },
    ]
    filtered = live.call("GET", "/admin/otp/seeds?query=dave", token=root).json()
    assert [s["username"] for s in filtered["data"]] == ["dave"]
    assert (filtered["query"], filtered["range"]) == ("dave", "0-1/1")
    deleted = live.call("DELETE", "/admin/otp/seeds/CN%3Dalice%2COU%3Dlocal", token=root)
    assert deleted.status_code == 204
    again = live.call("DELETE", "/admin/otp/seeds/CN=alice,OU=local", token=root)
    assert again.status_code == 404
    assert again.json()["id"] == "not found"


def test_deleting_a_seed_starts_enrolment_over(live: LiveServer) -> None:
    token, secret = enrol(live)
    assert live.otp(token, totp_now(secret, live.clock.now)).status_code == 200
    root = live.call(
        "GET", "/admin/authorization", token=live.login("root", "root-pass", "service")["token"]
    ).json()["token"]
    assert live.call("DELETE", "/admin/otp/seeds/CN=alice,OU=local", token=root).status_code == 204
    fresh = live.initialize(live.login("alice", "alice-pass")["token"]).json()
    assert fresh["type"] == "Secret" and fresh["secret"] != secret


def test_seed_routes_need_an_admin(live: LiveServer) -> None:
    full = live.call(
        "GET", "/admin/authorization", token=live.login("bob", "bob-pass", "service")["token"]
    ).json()["token"]
    for method, path in [
        ("GET", "/admin/otp/seeds"),
        ("DELETE", "/admin/otp/seeds/CN=alice,OU=local"),
    ]:
        response = live.call(method, path, token=full)
        assert response.status_code == 403
        assert response.json() == {"id": "forbidden", "message": "No administration rights."}
