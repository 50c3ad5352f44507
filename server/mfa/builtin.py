# -*- test-case-name: tests.test_builtin_totp, tests.test_totp -*-
"""The built-in DefaultTimeBased provider: seed enrolment and TOTP verification."""

from __future__ import annotations

import base64
from collections.abc import Callable

from appgate_mfa_server.config import DefaultTimeBasedProvider
from appgate_mfa_server.lockout import LockoutPolicy
from appgate_mfa_server.mfa import totp
from appgate_mfa_server.mfa.barcode import qr_jpeg
from appgate_mfa_server.mfa.base import Accepted, Initialized, InitializeOutcome, Rejected, Verdict
from appgate_mfa_server.push_limit import PushLimit
from appgate_mfa_server.seedcrypt import SeedCipher
from appgate_mfa_server.store.base import SeedRecord, Store
from appgate_mfa_server.users import UserInfo

INVALID_OTP = "Invalid OTP."
NOT_ENROLLED = "No OTP seed for this user. Initialize MFA first."


class BuiltinTotp:
    def __init__(
        self,
        config: DefaultTimeBasedProvider,
        *,
        store: Store,
        cipher: SeedCipher,
        clock: Callable[[], float],
        hostname: str,
        issuer: str,
    ) -> None:
        self._config = config
        self._store = store
        self._cipher = cipher
        self._clock = clock
        self._hostname = hostname
        self._issuer = issuer
        self._params = totp.TotpParameters(config.digits, config.period, config.drift_steps)
        self.lockout = LockoutPolicy.from_settings(config.lockout)

    joins_retries = False
    verify_budget = 0.0
    initialize_guesses = False
    push_limit: PushLimit | None = None
    max_challenge_rounds = 0

    async def initialize(
        self, user: UserInfo, user_password: str | None, seed: SeedRecord | None
    ) -> InitializeOutcome:
        """``seed`` is the user's seed as read with the token (None: none yet)."""
        if seed is not None and seed.verified:
            return Initialized({"type": "AlreadySeeded"})
        if seed is None:
            fresh = totp.new_secret(self._config.secret_bits)
            seed = await self._store.insert_seed_if_absent(
                SeedRecord(
                    dn=user.dn,
                    provider=user.provider,
                    username=user.username,
                    secret_blob=self._cipher.encrypt(user.dn, fresh),
                    verified=False,
                    last_step=None,
                    created_at=self._clock(),
                )
            )
            if seed.verified:  # another request enrolled and verified it meanwhile
                return Initialized({"type": "AlreadySeeded"})
        secret = self._cipher.decrypt(user.dn, seed.secret_blob)
        url = totp.otpauth_url(
            secret,
            username=user.username,
            provider=user.provider,
            hostname=self._hostname,
            issuer=self._issuer,
            params=self._params,
        )
        return Initialized(
            {
                "type": "Secret",
                "secret": secret,
                "otpAuthUrl": url,
                "barcode": base64.b64encode(qr_jpeg(url)).decode("ascii"),
            }
        )

    async def verify(
        self, user: UserInfo, otp: str, state: str | None, seed: SeedRecord | None
    ) -> Verdict:
        if seed is None:
            return Rejected(NOT_ENROLLED, {"cause": "no seed"})
        secret = self._cipher.decrypt(user.dn, seed.secret_blob)
        step = totp.matching_step(secret, otp, self._clock(), self._params)
        if step is None:
            return Rejected(INVALID_OTP, {"cause": "wrong code"})
        if not await self._store.use_seed_step(user.dn, step, seed.secret_blob):
            return Rejected(INVALID_OTP, {"cause": "replayed code"})
        return Accepted({"enrolled": not seed.verified})
