# -*- test-case-name: tests.test_test_control, tests.test_test_control_units -*-
"""Known seeds: a test puts a base32 secret of its choosing in place of a user's seed, so it
can compute the codes itself (``oathtool --totp -N @<clock> SECRET``)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool, StrictStr

from appgate_mfa_server import errors
from appgate_mfa_server.config import DefaultTimeBasedProvider, Settings
from appgate_mfa_server.errors import FieldError
from appgate_mfa_server.schemas import RequestBody
from appgate_mfa_server.seedcrypt import SeedCipher
from appgate_mfa_server.store.base import SeedRecord, user_dn

MIN_SECRET_BYTES = 10  # 80 bits, as the well-known JBSWY3DPEHPK3PXP
MAX_SECRET_BYTES = 64  # 512 bits, the most the server makes itself


class SeedRequest(RequestBody):
    """The body of PUT /_test/seeds/{distinguished-name}."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    verified: StrictBool = True


def normalized_secret(secret: str) -> str:
    """The secret as the server keeps its own: upper case, no padding, no spaces."""
    text = "".join(secret.split()).upper().rstrip("=")
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise errors.validation_error([FieldError("secret", "must be base32")]) from None
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        message = f"must hold {MIN_SECRET_BYTES * 8} to {MAX_SECRET_BYTES * 8} bits"
        raise errors.validation_error([FieldError("secret", message)])
    return text


class SeedPlacer:
    """Which configured users can have a built-in TOTP seed, and the record for one."""

    def __init__(self, settings: Settings) -> None:
        totp = {p.name for p in settings.mfa_providers if isinstance(p, DefaultTimeBasedProvider)}
        self._users: dict[str, tuple[str, str, str | None]] = {}  # dn -> provider, user, mfa
        for idp in settings.identity_providers:
            mfa = idp.mfa_provider if idp.mfa_provider in totp else None
            for user in idp.users:
                self._users[user_dn(idp.name, user.username)] = (idp.name, user.username, mfa)

    def record(self, dn: str, request: SeedRequest, cipher: SeedCipher, now: float) -> SeedRecord:
        found = self._users.get(dn)
        if found is None:
            raise errors.not_found(f"No configured user has the distinguished name {dn}.")
        provider, username, mfa = found
        if mfa is None:
            message = "the user's identity provider has no DefaultTimeBased MFA provider"
            raise errors.validation_error([FieldError("distinguished-name", message)])
        secret = normalized_secret(request.secret)
        return SeedRecord(
            dn=dn, provider=provider, username=username, secret_blob=cipher.encrypt(dn, secret),
            verified=request.verified, last_step=None, created_at=now,
        )  # fmt: skip
