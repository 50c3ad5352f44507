"""Password checks that take the same time whether the user exists, the password is stored
in clear (demo files) or as an scrypt hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _N, _R, _P)
    return "$".join(
        [
            "scrypt",
            str(_N),
            str(_R),
            str(_P),
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        ]
    )


def verify_hash(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(digest_b64, validate=True)
        actual = _scrypt(password, salt, int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def verify_plain(password: str, stored: str) -> bool:
    """Compare digests so the comparison time does not depend on the lengths either."""
    return hmac.compare_digest(
        hashlib.sha256(password.encode("utf-8")).digest(),
        hashlib.sha256(stored.encode("utf-8")).digest(),
    )


def dummy_hash_like(stored: str) -> str:
    """A hash of a random password with the parameters of ``stored``: checking a password
    against it costs what checking against ``stored`` costs, and it never matches."""
    try:
        _scheme, n, r, p, _salt, _digest = stored.split("$")
        params = int(n), int(r), int(p)
    except ValueError:
        params = _N, _R, _P
    salt = secrets.token_bytes(16)
    digest = _scrypt(secrets.token_urlsafe(16), salt, *params)
    encoded = [base64.b64encode(salt).decode(), base64.b64encode(digest).decode()]
    return "$".join(["scrypt", *map(str, params), *encoded])
