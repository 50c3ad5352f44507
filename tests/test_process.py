"""The real `mfa-server` process: start with defaults, announce the port, keep state across a
restart (seeds, verified flags, lockouts, live tokens), refuse a bad configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import ACCEPT, base_config, http_call, http_login, mfa_server, totp_now


def _login(url: str, user: str, password: str, provider: str = "local") -> str:
    return http_login(httpx, url, provider, user, password)


def _post(url: str, path: str, token: str, body: object = None) -> httpx.Response:
    return http_call(httpx, url, path, token, body)


@pytest.mark.slow
def test_starts_with_embedded_defaults(tmp_path: Path) -> None:
    env_free = {k: v for k, v in os.environ.items() if k != "MFA_SERVER_CONFIG"}
    with mfa_server([], tmp_path, env_free) as (url, process, ready):
        assert ready["host"] == "127.0.0.1"
        mock_control = ready["mockRadius"]["controlPort"]  # the demo starts the mock RADIUS
        assert httpx.get(f"http://127.0.0.1:{mock_control}/health").json()["scenarios"] == 15
        names = httpx.get(url + "/admin/identity-providers/names", headers=ACCEPT).json()
        assert [d["name"] for d in names["data"]][:3] == ["local", "service", "radius-challenge"]
        # one user of each RADIUS mode reaches the mock started with the demo
        carol = _login(url, "carol", "carol-pass", "radius-challenge")
        challenge = _post(url, "/admin/authentication/otp/initialize", carol,
                          {"userPassword": "carol-pass"}).json()  # fmt: skip
        assert challenge["responseMessage"] == "Enter the code shown on your token"
        olga = _login(url, "olga", "olga-pass", "radius-onefactor")
        assert _post(url, "/admin/authentication/otp", olga, {"otp": "654321"}).status_code == 200
        token = _login(url, "alice", "alice-pass")
        init = _post(url, "/admin/authentication/otp/initialize", token).json()
        assert init["type"] == "Secret"
    err = process.log.text()
    assert process.returncode == 0
    with pytest.raises(httpx.ConnectError):  # the mock went down with the server
        httpx.get(f"http://127.0.0.1:{mock_control}/health")
    assert (tmp_path / "data" / "mfa.db").exists()
    assert (tmp_path / "data" / "seed.key").stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    events = [line.get("event") for line in lines]
    assert "login_ok" in events and "mfa_initialized" in events
    for secret in ("alice-pass", token, init["secret"]):
        assert secret not in err


@pytest.mark.slow
def test_restart_keeps_seeds_lockouts_and_tokens(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(base_config(tmp_path)))
    args = ["--config", str(config)]
    with mfa_server(args, tmp_path) as (url, _process, _ready):
        alice = _login(url, "alice", "alice-pass")
        secret = _post(url, "/admin/authentication/otp/initialize", alice).json()["secret"]
        import time

        code = totp_now(secret, time.time())
        mfa = _post(url, "/admin/authentication/otp", alice, {"otp": code})
        assert mfa.status_code == 200
        mfa_token = mfa.json()["token"]
        dave = _login(url, "dave", "dave-pass")
        _post(url, "/admin/authentication/otp/initialize", dave)
        for _ in range(5):
            last = _post(url, "/admin/authentication/otp", dave, {"otp": "000000"})
        assert last.json()["reason"] == "Too many failed attempts. Try again later."
    with mfa_server(args, tmp_path) as (url, _process, _ready):
        # the seed is still verified, the lockout still holds, the MFA token still works
        again = _login(url, "alice", "alice-pass")
        init = _post(url, "/admin/authentication/otp/initialize", again)
        assert init.json() == {"type": "AlreadySeeded"}
        full = httpx.get(
            url + "/admin/authorization", headers={**ACCEPT, "Authorization": f"Bearer {mfa_token}"}
        )
        assert full.status_code == 200
        dave = _login(url, "dave", "dave-pass")
        refused = _post(url, "/admin/authentication/otp", dave, {"otp": "000000"})
        assert refused.json()["reason"] == "Too many failed attempts. Try again later."


def test_bad_configuration_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("identityProviders: [{name: x, users: [{username: u}]}]\nextra: 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "appgate_mfa_server", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"{bad}:2: extra: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_config_from_environment(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    config["server"]["hostname"] = "from-env.test"
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "MFA_SERVER_CONFIG": str(path)}
    with mfa_server([], tmp_path, env) as (url, _process, _ready):
        token = _login(url, "alice", "alice-pass")
        body = _post(url, "/admin/authentication/otp/initialize", token).json()
        assert "@from-env.test?" in body["otpAuthUrl"]
