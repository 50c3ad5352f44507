"""RFC 6238 TOTP: secrets, the otpauth URL and verification with a drift window."""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote

import pyotp


@dataclass(frozen=True)
class TotpParameters:
    digits: int = 6
    period: int = 30
    drift_steps: int = 1


def new_secret(bits: int) -> str:
    """A random base32 secret without padding (authenticator apps expect none)."""
    if bits % 8 or not 128 <= bits <= 512:
        raise ValueError("secret size must be a multiple of 8 between 128 and 512 bits")
    return base64.b32encode(secrets.token_bytes(bits // 8)).decode("ascii").rstrip("=")


def otpauth_url(
    secret: str,
    *,
    username: str,
    provider: str,
    hostname: str,
    issuer: str,
    params: TotpParameters = TotpParameters(),
) -> str:
    """``otpauth://totp/<user>@<provider>@<host>?secret=..&issuer=..`` as the vendor writes it."""
    label = quote(f"{username}@{provider}@{hostname}", safe="@")
    url = f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer, safe='')}"
    if params.digits != 6:
        url += f"&digits={params.digits}"
    if params.period != 30:
        url += f"&period={params.period}"
    return url


def code_at(secret: str, when: float, params: TotpParameters = TotpParameters()) -> str:
    """The code of ``secret`` at ``when``; ValueError for a secret that is not base32."""
    try:
        base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    except (ValueError, TypeError):
        raise ValueError("the secret is not base32") from None
    totp = pyotp.TOTP(secret.upper(), digits=params.digits, interval=params.period)
    return totp.generate_otp(current_step(when, params.period))


def current_step(now: float, period: int) -> int:
    return int(now // period)


def matching_step(secret: str, code: str, now: float, params: TotpParameters) -> int | None:
    """The time step within the drift window whose code equals ``code``, else None.

    Every candidate is computed and compared in constant time, so the answer's timing does not
    reveal which step (if any) matched.
    """
    totp = pyotp.TOTP(secret, digits=params.digits, interval=params.period)
    given = code.encode("utf-8")
    found: int | None = None
    centre = current_step(now, params.period)
    for step in range(centre - params.drift_steps, centre + params.drift_steps + 1):
        expected = totp.generate_otp(step).encode("ascii")
        if hmac.compare_digest(expected, given) and found is None:
            found = step
    return found
