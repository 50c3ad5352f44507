"""The seed encryption key against the database: a lost or changed key stops the start with a
message naming the key file; `mfa-server rotate-key` re-encrypts every seed."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from appgate_mfa_server.config import StorageSettings
from appgate_mfa_server.keys import KeyMismatch, open_checked_key, shown_url
from appgate_mfa_server.seedcrypt import SeedCipher
from appgate_mfa_server.store import SeedRecord, open_store
from tests.conftest import base_config, http_call, http_login, mfa_server, totp_now

INIT = "/admin/authentication/otp/initialize"
OTP = "/admin/authentication/otp"


def _write_config(tmp_path: Path, key_file: str = "./seed.key") -> Path:
    config = base_config(tmp_path)
    config["storage"]["encryptionKeyFile"] = key_file
    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start(config: Path) -> subprocess.CompletedProcess[str]:
    """A start that is expected to fail (so it returns, instead of serving)."""
    return subprocess.run(
        [sys.executable, "-m", "appgate_mfa_server", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _enrol_alice(config: Path) -> str:
    with mfa_server(["--config", str(config)]) as (url, _process, _ready):
        token = http_login(httpx, url, "local", "alice", "alice-pass")
        secret: str = http_call(httpx, url, INIT, token).json()["secret"]
        assert (
            http_call(httpx, url, OTP, token, {"otp": totp_now(secret, time.time())}).status_code
            == 200
        )
    return secret


@pytest.mark.slow
def test_a_lost_key_file_stops_the_start_and_is_not_replaced(tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    _enrol_alice(config)
    key = tmp_path / "seed.key"
    key.unlink()
    failed = _start(config)
    assert failed.returncode == 2
    assert f"{key}: the seed encryption key file is missing" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not key.exists()  # a new key would make every seed unreadable


@pytest.mark.slow
def test_another_key_stops_the_start(tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    _enrol_alice(config)
    key = tmp_path / "seed.key"
    key.write_text(base64.urlsafe_b64encode(b"x" * 32).decode() + "\n")
    failed = _start(config)
    assert failed.returncode == 2
    assert f"mfa-server: {key}: this is not the seed encryption key of the database" in (
        failed.stderr
    )
    assert "mfa-server rotate-key" in failed.stderr


@pytest.mark.slow
def test_a_database_from_before_check_values_is_checked_by_decrypting_a_seed(
    tmp_path: Path,
) -> None:
    import sqlite3

    config = _write_config(tmp_path)
    _enrol_alice(config)
    with sqlite3.connect(tmp_path / "mfa.db") as db:  # as an older server left it
        db.execute("DELETE FROM meta")
    (tmp_path / "seed.key").write_text(base64.urlsafe_b64encode(b"y" * 32).decode())
    assert _start(config).returncode == 2


@pytest.mark.slow
def test_rotate_key_reencrypts_every_seed(tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    secret = _enrol_alice(config)
    new_key = tmp_path / "new.key"
    rotated = subprocess.run(
        [sys.executable, "-m", "appgate_mfa_server", "rotate-key", "--config", str(config),
         "--new-key-file", str(new_key)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith(f"re-encrypted 1 seeds with the key in {new_key}")
    assert new_key.stat().st_mode & 0o777 == 0o600
    assert _start(config).returncode == 2  # the old key no longer fits the database
    moved = _write_config(tmp_path, "./new.key")
    with mfa_server(["--config", str(moved)]) as (url, _process, _ready):
        token = http_login(httpx, url, "local", "alice", "alice-pass")
        assert http_call(httpx, url, INIT, token).json() == {"type": "AlreadySeeded"}
        code = totp_now(secret, time.time() + 30)  # her authenticator app keeps working
        assert http_call(httpx, url, OTP, token, {"otp": code}).status_code == 200
    again = subprocess.run(
        [sys.executable, "-m", "appgate_mfa_server", "rotate-key", "--config", str(moved),
         "--new-key-file", str(new_key)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert again.returncode == 2 and "the new key is the key in use" in again.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://mfa:hunter2@db:5432/mfa", "postgresql://db:5432/mfa"),
        ("postgresql://mfa@db/mfa?password=hunter2&sslmode=require", "postgresql://db/mfa"),
        ("postgres://u:hunter2@[::1]:5432/m", "postgres://[::1]:5432/m"),
        ("sqlite:////var/lib/mfa/mfa.db", "sqlite:////var/lib/mfa/mfa.db"),
    ],
)
def test_a_storage_url_in_a_message_has_no_secret(url: str, shown: str) -> None:
    assert shown_url(url) == shown


# In process, on a real SQLite file: which message each case of a missing or wrong key gives.


def _open_checked(url: str, storage: StorageSettings, seed: SeedRecord | None = None) -> bytes:
    async def body() -> bytes:
        store = open_store(url)
        await store.open()
        try:
            if seed is not None:
                await store.put_seed(seed)
            return await open_checked_key(store, storage)
        finally:
            await store.close()

    return asyncio.run(body())


def _inline(key: bytes, url: str) -> StorageSettings:
    return StorageSettings(url=url, encryption_key=base64.urlsafe_b64encode(key).decode())


def test_an_inline_key_is_checked_like_a_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mfa.db'}"
    assert _open_checked(url, _inline(b"a" * 32, url)) == b"a" * 32  # first use: recorded
    assert _open_checked(url, _inline(b"a" * 32, url)) == b"a" * 32
    with pytest.raises(KeyMismatch) as mismatch:
        _open_checked(url, _inline(b"b" * 32, url))
    assert str(mismatch.value).startswith(
        f"storage.encryptionKey: this is not the seed encryption key of the database {url};"
    )


def test_a_missing_key_file_names_what_the_database_holds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mfa.db'}"
    key_file = tmp_path / "seed.key"
    storage = StorageSettings(url=url, encryption_key_file=str(key_file))
    _open_checked(url, storage)  # creates the key file and records its check value
    key_file.unlink()
    with pytest.raises(KeyMismatch) as checked_only:
        _open_checked(url, storage)
    assert str(checked_only.value) == (
        f"{key_file}: the seed encryption key file is missing, but the database {url} was used "
        "with a key (it holds its check value). Restore the file: a new key would not fit the "
        "database."
    )
    assert not key_file.exists()

    older = f"sqlite:///{tmp_path / 'older.db'}"  # seeds, but no check value yet
    blob = SeedCipher(b"c" * 32).encrypt("CN=alice,OU=local", "JBSWY3DPEHPK3PXP")
    seed = SeedRecord("CN=alice,OU=local", "local", "alice", blob, True, None, 1.0)
    with pytest.raises(KeyMismatch) as seeds_only:
        _open_checked(older, StorageSettings(url=older, encryption_key_file=str(key_file)), seed)
    assert "(it holds its check value and seeds encrypted with it)" in str(seeds_only.value)
    assert not key_file.exists()


@pytest.mark.slow
def test_a_key_file_others_may_read_is_named_in_a_warning_at_start(tmp_path: Path) -> None:
    """Mode 0644 (what Kubernetes gives a mounted secret by default) is warned about with the
    file and the mode, never the key; the server still starts. 0600 gives no warning."""
    key_file = tmp_path / "seed.key"
    key_text = base64.urlsafe_b64encode(bytes(range(32))).decode()
    key_file.write_text(key_text + "\n")
    key_file.chmod(0o644)
    args = ["--config", str(_write_config(tmp_path))]
    with mfa_server([*args, "--workers", "2"], tmp_path) as (url, process, _ready):
        warning = process.log.wait_for("key_file_permissions")
        assert http_login(httpx, url, "local", "alice", "alice-pass")  # it serves
    assert (warning["level"], warning["file"], warning["mode"]) == (
        "warning", str(key_file), "0644"
    )  # fmt: skip
    assert "chmod 600" in warning["message"]
    log = process.log.text()
    assert key_text not in log and key_text.rstrip("=") not in log
    assert len(process.log.events("key_file_permissions")) == 1  # once, not per worker
    key_file.chmod(0o600)
    with mfa_server(args, tmp_path) as (_url, process, _ready):
        pass
    assert "key_file_permissions" not in process.log.text()
