# -*- test-case-name: tests.test_keys, tests.test_builtin_totp -*-
"""Seeds are stored encrypted (AES-256-GCM), bound to their user so rows cannot be swapped."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_NONCE_BYTES = 12


class KeyFileError(Exception):
    """The encryption key cannot be read or is malformed; the message is for the operator."""


class SeedCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise KeyFileError(f"the seed encryption key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def encrypt(self, owner: str, secret: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode("ascii"), owner.encode("utf-8"))

    def decrypt(self, owner: str, blob: bytes) -> str:
        """Raises ValueError when the blob was not made with this key for this owner."""
        try:
            plain = self._aead.decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], owner.encode("utf-8")
            )
        except InvalidTag:
            raise ValueError("seed does not decrypt with this key") from None
        return plain.decode("ascii")


def decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise KeyFileError("the seed encryption key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"the seed encryption key must decode to {KEY_BYTES} bytes")
    return key


def write_key_file(path: Path, key: bytes) -> bytes:
    """Create the key file with mode 0600, never overwriting one; if another process made it
    first, its key is the one to use. The file appears whole or not at all (written aside,
    then linked into place), so a process starting at the same moment never reads it empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(base64.urlsafe_b64encode(key).decode("ascii") + "\n")
        try:
            os.link(aside, path)
        except FileExistsError:
            return decode_key(path.read_text(encoding="ascii"))
    finally:
        aside.unlink(missing_ok=True)
    return key
