"""The seed encryption key: loaded, checked against the database, rotated.

The database keeps a check value of the key its seeds were encrypted with (an HMAC of a fixed
text, which reveals nothing of the key). A server that starts with another key, or whose key
file is gone while the database holds seeds, stops with a message naming the key file instead
of serving logins that all fail; it creates a key file only for a database that has none.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from appgate_mfa_server.config import StorageSettings
from appgate_mfa_server.seedcrypt import (
    KEY_BYTES,
    KeyFileError,
    SeedCipher,
    decode_key,
    write_key_file,
)
from appgate_mfa_server.store.base import KEY_CHECK, Store

_CHECK_TEXT = b"appgate-mfa-reference seed key check v1"
log = logging.getLogger("mfa.server")


class KeyMismatch(KeyFileError):
    """The key is not the database's; the message says which file and what to do."""


def check_value(key: bytes) -> bytes:
    return hmac.new(key, _CHECK_TEXT, hashlib.sha256).digest()


def shown_url(url: str) -> str:
    """A storage URL fit for a message: scheme, host, port and database; no user, password
    or parameters (a password may also sit in the query)."""
    if url.startswith("sqlite:"):
        return url  # a file path: nothing secret in it
    parts = urlsplit(url)
    host_and_port = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host_and_port, parts.path, "", ""))


def _key_source(storage: StorageSettings) -> str:
    if storage.encryption_key is not None:
        return "storage.encryptionKey"
    return str(storage.encryption_key_file)


def load_key(storage: StorageSettings, *, create: bool) -> bytes:
    """The configured key; the key file is made (mode 0600) only when ``create`` allows."""
    if storage.encryption_key is not None:
        return decode_key(storage.encryption_key)
    if storage.encryption_key_file is None:
        raise KeyFileError("set storage.encryptionKey or storage.encryptionKeyFile")
    path = Path(storage.encryption_key_file)
    try:
        return decode_key(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        if not create:
            raise
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read the seed encryption key: {exc}") from None
    try:
        return write_key_file(path, secrets.token_bytes(KEY_BYTES))
    except OSError as exc:  # a folder this user may not write (a container's bind mount, say)
        raise KeyFileError(
            f"{path}: cannot create the seed encryption key: {exc.strerror}; the folder must "
            f"be writable by this process's user (uid {os.getuid()})"
        ) from None


def warn_if_exposed(storage: StorageSettings) -> None:
    """Log a warning naming the key file and its mode (never the key) when users other than
    its owner may read or change it. A warning, not a refusal: Kubernetes mounts secrets with
    mode 0644 unless told otherwise, in a container that usually runs one user."""
    if storage.encryption_key is not None or storage.encryption_key_file is None:
        return
    try:
        mode = os.stat(storage.encryption_key_file).st_mode & 0o777
    except OSError:
        return  # missing or unreadable: open_checked_key says so
    if mode & 0o077:
        shown = f"{mode:04o}"
        message = (
            f"the seed key file has mode {shown}: users other than its owner may read or "
            "change it; chmod 600 it (on Kubernetes, mount the secret with defaultMode 0400)"
        )
        fields = {"event": "key_file_permissions", "file": storage.encryption_key_file,
                  "mode": shown, "message": message}  # fmt: skip
        log.warning("seed key file open to others", extra={"fields": fields})


async def open_checked_key(store: Store, storage: StorageSettings) -> bytes:
    """The key, after making sure it is the one the database's seeds were encrypted with."""
    stored = await store.get_meta(KEY_CHECK)
    any_seed = await store.any_seed()
    try:
        key = load_key(storage, create=stored is None and any_seed is None)
    except FileNotFoundError:
        raise KeyMismatch(
            f"{storage.encryption_key_file}: the seed encryption key file is missing, but the "
            f"database {shown_url(storage.url)} was used with a key (it holds its check value"
            f"{' and seeds encrypted with it' if any_seed is not None else ''}). Restore the "
            "file: a new key would not fit the database."
        ) from None
    mine = check_value(key)
    if stored is None:
        if any_seed is not None:  # a database from before check values: try a seed instead
            try:
                SeedCipher(key).decrypt(any_seed.dn, any_seed.secret_blob)
            except ValueError:
                raise _mismatch(storage) from None
        stored = await store.set_meta_if_absent(KEY_CHECK, mine)
    if not hmac.compare_digest(stored, mine):
        raise _mismatch(storage)
    return key


def _mismatch(storage: StorageSettings) -> KeyMismatch:
    return KeyMismatch(
        f"{_key_source(storage)}: this is not the seed encryption key of the database "
        f"{shown_url(storage.url)}; its seeds would not decrypt. Use the key they were "
        "encrypted with, or re-encrypt them with `mfa-server rotate-key`."
    )


async def rotate(store: Store, old: bytes, new: bytes) -> int:
    """Re-encrypt every seed from ``old`` to ``new`` and record ``new`` as the database's key,
    in one transaction; RADIUS states sealed with the old key stop working."""
    if hmac.compare_digest(old, new):
        raise KeyFileError("the new key is the key in use")
    before, after = SeedCipher(old), SeedCipher(new)

    def reencrypt(seed_dn: str, blob: bytes) -> bytes:
        return after.encrypt(seed_dn, before.decrypt(seed_dn, blob))

    return await store.rotate_seeds(
        lambda seed: reencrypt(seed.dn, seed.secret_blob), check_value(new)
    )
