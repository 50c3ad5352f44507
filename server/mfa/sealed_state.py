# -*- test-case-name: tests.test_radius_units, tests.test_radius_wire -*-
"""The RADIUS State handed to clients, sealed: AES-GCM over the upstream State, the host that
issued it, the user and an expiry.

A client can neither read nor alter it, cannot replay another user's, and any server process
that shares the key can continue the exchange (the key is derived from the seed key).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12
STATE_KEY_INFO = b"appgate-mfa-reference radius state v1"


class StateError(Exception):
    """The state is not usable; ``malformed`` tells a client's typo from a forgery."""

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


@dataclass(frozen=True)
class UpstreamState:
    state: bytes
    host: str
    user: str
    expires: float


def derive_key(master: bytes, info: bytes = STATE_KEY_INFO) -> bytes:
    """A key of its own for each use of the master key (``info`` names the use)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


class StateSealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, upstream: UpstreamState) -> str:
        payload = json.dumps(
            {
                "s": base64.b64encode(upstream.state).decode(),
                "h": upstream.host,
                "u": upstream.user,
                "e": upstream.expires,
            },
            separators=(",", ":"),
        ).encode()
        nonce = secrets.token_bytes(_NONCE)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, payload, None)).decode()

    def unseal(self, sealed: str, *, user: str, now: float) -> UpstreamState:
        try:
            blob = base64.b64decode(sealed, validate=True)
        except (binascii.Error, ValueError):
            raise StateError("must be base64", malformed=True) from None
        if len(blob) <= _NONCE:
            raise StateError("must be a state from initialize", malformed=True)
        try:
            payload = json.loads(self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], None))
            upstream = UpstreamState(
                base64.b64decode(payload["s"]), str(payload["h"]), str(payload["u"]),
                float(payload["e"]),
            )  # fmt: skip
        except (InvalidTag, ValueError, KeyError, TypeError):
            raise StateError("The state is not one this server issued.") from None
        if upstream.user != user:
            raise StateError("The state was issued to another user.")
        if now >= upstream.expires:
            raise StateError("The state has expired. Initialize again.")
        return upstream
