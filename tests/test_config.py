"""The configuration file: validation messages naming file, key path and problem."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from appgate_mfa_server.config import (
    MAX_DURATION,
    ConfigError,
    RadiusProvider,
    demo_settings,
    load_settings,
    parse_duration,
)
from appgate_mfa_server.passwords import hash_password, verify_hash
from tests.conftest import base_config


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_demo_configuration_loads(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path)
    assert settings.storage.url == f"sqlite:///{tmp_path / 'mfa.db'}"
    assert [idp.name for idp in settings.identity_providers] == [
        "local",
        "service",
        "radius-challenge",
        "radius-push",
        "radius-push-password",
        "radius-onefactor",
    ]
    modes = {p.name: getattr(p, "mode", None) for p in settings.mfa_providers}
    assert modes == {
        "builtin": None,
        "radius-challenge": "Challenge",
        "radius-push": "Push",
        "radius-push-password": "Push",
        "radius-onefactor": "OneFactor",
    }


def test_relative_paths_are_resolved_against_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, base_config(tmp_path))
    settings = load_settings(path)
    assert settings.storage.url == f"sqlite:///{tmp_path / 'mfa.db'}"
    assert settings.storage.encryption_key_file == str(tmp_path / "seed.key")
    assert settings.server.token_lifetime == 3600


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["server"].update(colour="red"), "server.colour: unknown key"),
        (lambda c: c["server"].update(port="many"), "server.port: Input should be a valid integer"),
        (
            lambda c: c["identityProviders"][0]["users"][0].pop("password"),
            "identityProviders[0].users[0]: give exactly one of password and passwordHash",
        ),
        (
            lambda c: c["identityProviders"][0].update(mfaProvider="ghost"),
            "identityProviders[0].mfaProvider: no MFA provider named 'ghost' in mfaProviders "
            "(builtin)",
        ),
        (
            lambda c: c["mfaProviders"][0].update(type="Fido2"),
            "mfaProviders[0].type: unknown type 'Fido2', expected one of DefaultTimeBased, Radius",
        ),
        (
            lambda c: c["mfaProviders"].append(
                {
                    "name": "r",
                    "type": "Radius",
                    "hostnames": ["h"],
                    "sharedSecret": "s",
                    "mode": "Push",
                }
            ),
            "mfaProviders[1].challengeSharedSecret: mode Push without useUserPassword needs "
            "challengeSharedSecret",
        ),
        (lambda c: c["server"].update(tokenLifetime="soon"), "server.tokenLifetime: expected a"),
        (
            lambda c: c["mfaProviders"][0].update(secretBits=100),
            "mfaProviders[0].secretBits: Input should be",
        ),
        (
            lambda c: c["server"].update(maxConnections=50, maxConnectionsPerAddress=51),
            "server.maxConnectionsPerAddress: more than maxConnections (50)",
        ),
        (
            lambda c: c["mfaProviders"].append(
                {
                    "name": "r",
                    "type": "Radius",
                    "hostnames": ["h"],
                    "sharedSecret": "s",
                    "mode": "OneFactor",
                    "timeout": "10m",
                }
            ),
            "mfaProviders[1].timeout: must be at most 5m, not 10m",
        ),
    ],
)
def test_errors_name_file_path_and_problem(tmp_path: Path, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    config = base_config(tmp_path)
    change(config)
    path = _write(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert re.search(rf"^{re.escape(str(path))}:\d+: {re.escape(expected)}", message, re.M), message


def test_the_share_per_address_defaults_to_a_tenth_of_the_connections(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    assert load_settings(_write(tmp_path, config)).server.connection_share == 100
    config["server"].update(maxConnections=5)
    assert load_settings(_write(tmp_path, config)).server.connection_share == 1
    config["server"].update(maxConnections=300, maxConnectionsPerAddress=300)  # no share
    assert load_settings(_write(tmp_path, config)).server.connection_share == 300


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(path)
    path.write_text("a: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path)


def test_durations() -> None:
    assert parse_duration("24h") == 86400
    assert parse_duration("15m") == 900
    assert parse_duration(90) == 90
    assert parse_duration("250ms") == 0.25
    for bad in ["", "-5s", "5 weeks", True, None, 0]:
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_password_hashes_round_trip() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_hash("correct horse", stored)
    assert not verify_hash("wrong", stored)
    assert not verify_hash("x", "scrypt$garbage")


@pytest.mark.slow
def test_check_config_and_hash_password_commands(tmp_path: Path) -> None:
    good = _write(tmp_path, base_config(tmp_path))
    ok = subprocess.run(
        [sys.executable, "-m", "appgate_mfa_server", "check-config", str(good)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and ok.stdout.strip() == f"{good}: ok"
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: {port: -1}\nidentityProviders: []\n")
    failed = subprocess.run(
        [sys.executable, "-m", "appgate_mfa_server", "check-config", str(bad)],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1  # as `mock-radius validate`
    assert failed.stderr.splitlines() == [
        f"{bad}:1: server.port: Input should be greater than or equal to 0",
        f"{bad}:2: identityProviders: List should have at least 1 item after validation, not 0",
    ]
    hashed = subprocess.run(
        [sys.executable, "-m", "appgate_mfa_server", "hash-password", "--stdin"],
        input="s3cret\n",
        capture_output=True,
        text=True,
    )
    assert hashed.returncode == 0
    assert verify_hash("s3cret", hashed.stdout.strip())


def test_password_hash_users_log_in(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    config["identityProviders"][1]["users"].append(
        {"username": "hashed", "passwordHash": hash_password("pw-1")}
    )
    path = _write(tmp_path, config)
    from appgate_mfa_server.users import UserDirectory

    directory = UserDirectory(load_settings(path))
    assert directory.check_password("service", "hashed", "pw-1") is not None
    assert directory.check_password("service", "hashed", "pw-2") is None
    assert directory.check_password("service", "ghost", "pw-1") is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, 0, "0s", 400 * 365 * 86400])
def test_durations_are_finite_positive_and_bounded(value: object) -> None:
    """A NaN cooldown would never lock (every comparison with it is false), an infinite token
    lifetime never expires and cannot be written as a date."""
    from appgate_mfa_server.config import parse_duration

    with pytest.raises(ValueError):
        parse_duration(value)


UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
RADIUS_TIMEOUT_MAX = RadiusProvider.model_fields["timeout"].metadata[0].le  # 300 s


def _timeout_problem(value: object) -> str | None:
    try:
        RadiusProvider.model_validate(
            {
                "name": "r",
                "type": "Radius",
                "hostnames": ["h"],
                "sharedSecret": "s",
                "mode": "OneFactor",
                "timeout": value,
            }
        )
    except ValidationError as exc:
        return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
    return None


@given(st.integers(1, 10**7), st.sampled_from([*UNIT_SECONDS, ""]))
def test_a_duration_over_its_bound_is_refused_in_the_unit_written(number: int, unit: str) -> None:
    written = f"{number}{unit}"
    seconds = number * UNIT_SECONDS[unit or "s"]
    problem = _timeout_problem(written)
    if seconds <= RADIUS_TIMEOUT_MAX:
        assert problem is None
        return
    if seconds > MAX_DURATION:
        assert problem == "a duration must be at most 10 years"
        return
    assert problem is not None
    limit, _, rest = problem.removeprefix("must be at most ").partition(", not ")
    assert rest == written
    if not unit:
        assert limit == f"{RADIUS_TIMEOUT_MAX} (seconds)"
        return
    assert parse_duration(limit) == RADIUS_TIMEOUT_MAX  # the same bound, in words the file uses
    shown_unit = limit.lstrip("0123456789")
    if (RADIUS_TIMEOUT_MAX / UNIT_SECONDS[unit]).is_integer():
        assert shown_unit == unit  # 300s, 5m, 300000ms: what the user wrote
    else:  # 1h, 2d: the largest smaller unit that shows the bound whole
        assert shown_unit == "m"


def test_a_bare_number_over_the_bound_is_refused_in_seconds() -> None:
    assert _timeout_problem(301) == "must be at most 300 (seconds), not 301"
    assert _timeout_problem(300) is None
