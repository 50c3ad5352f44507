# -*- test-case-name: tests.test_radius_units, tests.test_radius_wire, tests.test_e2e_radius -*-
"""The Radius MFA provider: OneFactor, Challenge and Push over the asyncio RADIUS client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from appgate_mfa_server.config import RadiusMode, RadiusProvider
from appgate_mfa_server.lockout import LockoutPolicy
from appgate_mfa_server.mfa import radius_client as rc
from appgate_mfa_server.mfa.base import (
    Accepted,
    BadState,
    ChallengeAgain,
    Initialized,
    InitializeOutcome,
    NeedsInput,
    Rejected,
    Unavailable,
    Verdict,
)
from appgate_mfa_server.mfa.sealed_state import StateError, StateSealer, UpstreamState
from appgate_mfa_server.push_limit import PushLimit
from appgate_mfa_server.store.base import SeedRecord
from appgate_mfa_server.users import UserInfo
from radius_codec.codes import PAP_MAX_LENGTH, Code
from radius_codec.passwords import AuthProtocol

DEFAULT_STATE_LIFETIME = 300.0
MAX_STATE_LIFETIME = 3600.0  # whatever Session-Timeout the RADIUS server asks for
PAP_TOO_LONG = f"is longer than {PAP_MAX_LENGTH} bytes, the most a RADIUS User-Password carries"
REJECTED = "Rejected by the RADIUS server."
LEASE_MARGIN = 5.0  # seconds beyond the RADIUS timeout that a guess may hold its lockout place

Authenticate = Callable[..., Awaitable[rc.RadiusResponse]]


class RadiusMfa:
    def __init__(
        self,
        config: RadiusProvider,
        *,
        sealer: StateSealer,
        clock: Callable[[], float],
        authenticate: Authenticate = rc.authenticate,
    ) -> None:
        self._config = config
        self._sealer = sealer
        self._clock = clock
        self._authenticate = authenticate
        self._target = rc.RadiusTarget(
            hostnames=tuple(config.hostnames),
            port=config.port,
            secret=config.shared_secret.encode("utf-8"),
            timeout=config.timeout,
            protocol=config.authentication_protocol,
            require_message_authenticator=config.require_message_authenticator,
            nas_identifier=config.nas_identifier,
            nas_ip_address=None if config.nas_ip_address is None else str(config.nas_ip_address),
        )
        # an attempt holds its place in the lockout's budget for the whole exchange, at most
        self.lockout = LockoutPolicy.from_settings(
            config.lockout, lease=float(config.timeout) + LEASE_MARGIN
        )
        push = config.mode is RadiusMode.PUSH
        self.joins_retries = push
        self.initialize_guesses = config.mode is RadiusMode.CHALLENGE and config.use_user_password
        self.verify_budget = float(config.timeout)
        self.push_limit = PushLimit(config.push_limit, config.push_window) if push else None
        self.max_challenge_rounds = config.max_challenge_rounds
        seconds = config.timeout  # as the answers show it: 6, not 6.0
        self.timeout: float | int = int(seconds) if float(seconds).is_integer() else seconds
        self._pap = config.authentication_protocol is AuthProtocol.PAP

    async def _ask(
        self, user: UserInfo, password: str, state: bytes | None = None, host: str | None = None
    ) -> rc.RadiusResponse | Unavailable:
        try:
            return await self._authenticate(
                self._target,
                user.username,
                password,
                state=state,
                hosts=(host,) if host else None,
            )
        except rc.NoAnswer as failure:
            return Unavailable(str(failure), invalid=bool(failure.invalid))

    def _too_long(self, password: str) -> bool:
        return self._pap and len(password.encode("utf-8")) > PAP_MAX_LENGTH

    @staticmethod
    def _detail(response: rc.RadiusResponse) -> dict[str, Any]:
        return {"radiusHost": response.host, "radiusMs": round(response.elapsed * 1000, 1)}

    def _challenge_body(self, user: UserInfo, response: rc.RadiusResponse) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "Challenge"}
        if response.reply_message is not None:
            body["responseMessage"] = response.reply_message
        if response.state is not None:
            lifetime = min(float(response.session_timeout or DEFAULT_STATE_LIFETIME),
                           MAX_STATE_LIFETIME)  # fmt: skip
            body["state"] = self._sealer.seal(
                UpstreamState(response.state, response.host, user.dn, self._clock() + lifetime)
            )
        body["timeout"] = self.timeout
        return body

    async def initialize(
        self, user: UserInfo, user_password: str | None, seed: SeedRecord | None
    ) -> InitializeOutcome:
        mode = self._config.mode
        if mode is RadiusMode.ONE_FACTOR:
            return Initialized({"type": "Challenge", "timeout": self.timeout})
        if mode is RadiusMode.PUSH:
            return Initialized(
                {
                    "type": "Push",
                    "timeout": self.timeout,
                    "sendPassword": self._config.use_user_password,
                }
            )
        if self._config.use_user_password:
            if user_password is None:
                return NeedsInput("userPassword", "is required by this MFA provider")
            password = user_password
            if self._too_long(password):
                return NeedsInput("userPassword", PAP_TOO_LONG)
        else:
            assert self._config.challenge_shared_secret is not None
            password = self._config.challenge_shared_secret
        response = await self._ask(user, password)
        if isinstance(response, Unavailable):
            return response
        if response.code == Code.ACCESS_REJECT:
            return Rejected(response.reply_message or REJECTED, self._detail(response))
        # An Access-Accept here would be a server that needs no second factor; the client still
        # sends an OTP, which goes in a fresh Access-Request.
        body = self._challenge_body(user, response)
        return Initialized(body, self._detail(response), challenged=True)

    async def verify(
        self, user: UserInfo, otp: str, state: str | None, seed: SeedRecord | None
    ) -> Verdict:
        mode = self._config.mode
        upstream: UpstreamState | None = None
        if state is not None and mode is not RadiusMode.PUSH:
            try:
                upstream = self._sealer.unseal(state, user=user.dn, now=self._clock())
            except StateError as problem:
                return BadState(str(problem), malformed=problem.malformed)
            if upstream.host not in self._target.hostnames:  # configured away since
                return BadState("The state names a RADIUS server no longer configured. "
                                "Initialize again.")  # fmt: skip
        if mode is RadiusMode.PUSH and not self._config.use_user_password:
            assert self._config.challenge_shared_secret is not None
            password = self._config.challenge_shared_secret
        else:
            password = otp
            if self._too_long(password):
                return NeedsInput("otp", PAP_TOO_LONG)
        response = await self._ask(
            user,
            password,
            state=upstream.state if upstream else None,
            host=upstream.host if upstream else None,
        )
        if isinstance(response, Unavailable):
            return response
        detail = self._detail(response)
        if response.code == Code.ACCESS_ACCEPT:
            return Accepted(detail)
        if response.code == Code.ACCESS_CHALLENGE:
            return ChallengeAgain(self._challenge_body(user, response), detail)
        return Rejected(response.reply_message or REJECTED, detail)
