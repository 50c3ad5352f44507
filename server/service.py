"""The login flow as plain async methods: credentials -> partial token -> MFA -> full token.

Every method takes already-validated input and either returns the response body or raises an
ApiError; the outcomes of MFA methods become errors in one place (``_refusal``). Every guess
(a password, an OTP) goes through the lockout guard: reserve, evaluate, settle.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server import errors, logs
from server.config import Settings
from server.guard import LockoutGuard, lockout_key
from server.lockout import LockoutPolicy
from server.mfa.base import (
    Accepted,
    BadState,
    ChallengeAgain,
    Initialized,
    MfaMethod,
    NeedsInput,
    Rejected,
    Unavailable,
)
from server.push_join import PushJoiner
from server.schemas import InitializeRequest, LoginRequest, OtpRequest
from server.store.base import SeedRecord, Stage, Store, TokenRecord
from server.tokens import hash_token, issue_token, new_session_id
from server.users import UserDirectory, UserInfo

INVALID_CREDENTIALS = "Invalid username or password."
UNKNOWN_PROVIDER = "Unknown identity provider."
LOCKED_OUT = "Too many failed attempts. Try again later."
NO_MFA = "This user has no multi-factor authentication."
MFA_OWED = (
    "This user must complete multi-factor authentication, which this call does not support: "
    "log in with POST /admin/authentication instead."
)
ADMIN_PRIVILEGES = [{"type": "All", "target": "All"}]
MIN_LOCKOUT_RETENTION = 3600.0


def _iso(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


_event = logs.audit


@dataclass(slots=True)
class Session:
    """A live token, its user, and (when asked for) the user's seed, read in the same query."""

    record: TokenRecord
    user: UserInfo
    seed: SeedRecord | None = None


def _refusal(outcome: NeedsInput | Rejected | Unavailable | BadState) -> errors.ApiError:
    """The one place where an MFA method's outcome becomes an HTTP error."""
    if isinstance(outcome, NeedsInput):
        return errors.validation_error([errors.FieldError(outcome.field, outcome.message)])
    if isinstance(outcome, Rejected):
        return errors.authentication_failed(outcome.reason)
    if isinstance(outcome, Unavailable):
        if outcome.invalid:
            return errors.ApiError(502, "radius invalid response", outcome.message)
        return errors.ApiError(504, "radius timeout", outcome.message)
    if outcome.malformed:
        return errors.validation_error([errors.FieldError("state", outcome.reason)])
    return errors.authentication_failed(outcome.reason)


class LoginService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        methods: dict[str, MfaMethod],
        clock: Callable[[], float],
        pushes: PushJoiner,
    ) -> None:
        self._settings = settings
        self._store = store
        self._methods = methods
        self._clock = clock
        self._pushes = pushes
        self._guard = LockoutGuard(store, clock)
        self._users = UserDirectory(settings)
        self._login_lockout = LockoutPolicy.from_settings(settings.server.login_lockout)
        cooldowns = [self._login_lockout.max_cooldown]
        cooldowns += [m.lockout.max_cooldown for m in methods.values()]
        self._lockout_retention = max(MIN_LOCKOUT_RETENTION, *cooldowns)

    # helpers

    def _method_for(self, user: UserInfo) -> MfaMethod | None:
        return None if user.mfa_provider is None else self._methods[user.mfa_provider]

    def _expiry(self) -> float:
        return self._clock() + self._settings.server.token_lifetime

    def _login_response(self, user: UserInfo, token: str, record: TokenRecord) -> dict[str, Any]:
        owes_mfa = record.stage == Stage.PARTIAL and user.mfa_provider is not None
        return {
            "user": {
                "name": user.username,
                "needTwoFactorAuth": owes_mfa,
                "canAccessAuditLogs": False,
                "privileges": ADMIN_PRIVILEGES if user.admin else [],
            },
            "token": token,
            "expires": _iso(record.expires_at),
        }

    async def resolve(self, token: str | None, *stages: Stage, with_seed: bool = False) -> Session:
        """The live token and its user, or 401 if it is unknown, expired, revoked (or its
        session is) or at a stage not in ``stages``."""
        if not token:
            raise errors.token_error()
        token_hash = hash_token(token)
        seed: SeedRecord | None = None
        if with_seed:
            found = await self._store.get_token_and_seed(token_hash)
            record = None if found is None else found[0]
            seed = None if found is None else found[1]
        else:
            record = await self._store.get_token(token_hash)
        if record is None or record.revoked or record.expires_at <= self._clock():
            raise errors.token_error()
        user = self._users.find(record.provider, record.username)
        if user is None:  # removed from the configuration since the token was issued
            raise errors.token_error()
        if stages and record.stage not in stages:
            raise errors.token_error()
        return Session(record, user, seed)

    async def _advance(
        self, old: TokenRecord, user: UserInfo, stage: Stage
    ) -> tuple[str, TokenRecord]:
        # A token never outlives the partial token it replaced, except the full token, which
        # starts the session's lifetime afresh.
        expires = self._expiry() if stage == Stage.FULL else min(self._expiry(), old.expires_at)
        issued = issue_token(
            session_id=old.session_id,
            provider=user.provider,
            username=user.username,
            stage=stage,
            expires_at=expires,
        )
        if not await self._store.replace_token(old.token_hash, issued.record):
            raise errors.token_error()  # a concurrent request already used this token
        return issued.value, issued.record

    async def _check_password(self, request: LoginRequest) -> UserInfo:
        """The user whose credentials these are, through the login lockout, or 401."""
        if self._settings.identity_provider(request.providerName) is None:
            _event("login_failed", provider=request.providerName, cause="unknown provider")
            raise errors.authentication_failed(UNKNOWN_PROVIDER)
        # Password guessing is throttled per account, known or not (so the answer does not
        # tell which accounts exist); while locked, right and wrong passwords get one answer.
        key = lockout_key("login", request.providerName, request.username)
        reservation = await self._guard.reserve(key, self._login_lockout)
        if not reservation.admitted:
            _event("login_refused_locked", provider=request.providerName, username=request.username)
            raise errors.authentication_failed(LOCKED_OUT)
        check = (request.providerName, request.username, request.password)
        if self._users.uses_scrypt(request.providerName):  # ~50 ms of CPU: off the event loop
            user = await asyncio.to_thread(self._users.check_password, *check)
        else:  # clear-text demo passwords compare in microseconds; a thread hop costs more
            user = self._users.check_password(*check)
        if user is None:
            _event("login_failed", provider=request.providerName, username=request.username)
            if reservation.tripped:
                _event("login_lockout", key=key, until=_iso(reservation.locked_until))
                raise errors.authentication_failed(LOCKED_OUT)
            raise errors.authentication_failed(INVALID_CREDENTIALS)
        await self._guard.succeeded(key)
        return user

    async def _new_session(self, user: UserInfo, stage: Stage) -> tuple[str, TokenRecord]:
        issued = issue_token(
            session_id=new_session_id(),
            provider=user.provider,
            username=user.username,
            stage=stage,
            expires_at=self._expiry(),
        )
        await self._store.start_session(issued.record)
        return issued.value, issued.record

    # routes

    def identity_provider_names(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "data": [
                {"name": idp.name, "type": idp.type} for idp in self._settings.identity_providers
            ]
        }
        if self._settings.server.banner_message is not None:
            body["bannerMessage"] = self._settings.server.banner_message
        return body

    async def authenticate(self, request: LoginRequest) -> dict[str, Any]:
        user = await self._check_password(request)
        value, record = await self._new_session(user, Stage.PARTIAL)
        _event("login_ok", provider=user.provider, username=user.username, mfa=user.mfa_provider)
        return self._login_response(user, value, record)

    async def login(self, request: LoginRequest) -> dict[str, Any]:
        """The vendor's Simplified Login: a full token at once, for users who owe no MFA."""
        user = await self._check_password(request)
        if user.mfa_provider is not None:
            _event("login_refused_mfa", provider=user.provider, username=user.username)
            raise errors.authentication_failed(MFA_OWED)
        value, record = await self._new_session(user, Stage.FULL)
        _event("login_ok", provider=user.provider, username=user.username, mfa=None, simple=True)
        return self._login_response(user, value, record)

    async def initialize(self, session: Session, request: InitializeRequest) -> dict[str, Any]:
        """``session`` comes from ``resolve(token, Stage.PARTIAL, with_seed=True)``, done
        before the body is read so that a token error wins over a body error."""
        user = session.user
        method = self._method_for(user)
        if method is None:
            raise errors.authentication_failed(NO_MFA)
        reservation = None
        if method.initialize_guesses:  # the client's password goes to RADIUS: a guess
            reservation = await self._guard.reserve(user.dn, method.lockout)
            if not reservation.admitted:
                _event("mfa_refused_locked", username=user.username, provider=user.provider)
                raise errors.authentication_failed(LOCKED_OUT)
        try:
            outcome = await method.initialize(user, request.userPassword, session.seed)
        except Exception:
            if reservation is not None:
                await self._guard.no_verdict(user.dn, reservation)
            raise
        if reservation is not None and not isinstance(outcome, Rejected):
            # not a wrong guess; a right password is no success of the MFA either
            await self._guard.no_verdict(user.dn, reservation)
        if not isinstance(outcome, Initialized):
            _event("mfa_initialize_failed", username=user.username, provider=user.provider,
                   outcome=type(outcome).__name__)  # fmt: skip
            if reservation is not None and reservation.tripped and isinstance(outcome, Rejected):
                _event("lockout", key=user.dn, until=_iso(reservation.locked_until))
                raise errors.authentication_failed(LOCKED_OUT)
            raise _refusal(outcome)
        body = outcome.body
        if body["type"] == "Challenge":  # kept for a client that does not send it back
            await self._store.set_challenge_state(session.record.token_hash, body.get("state"))
        _event("mfa_initialized", username=user.username, provider=user.provider,
               type=body["type"], **outcome.detail)  # fmt: skip
        return body

    async def verify_otp(self, session: Session, request: OtpRequest) -> dict[str, Any]:
        method = self._method_for(session.user)
        if method is None:
            raise errors.authentication_failed(NO_MFA)
        if not method.joins_retries:
            return await self._verify(session, method, request)
        body, joined = await self._pushes.run_once(
            session.record.token_hash,
            method.verify_budget,
            lambda: self._verify(session, method, request),
        )
        if joined:
            user = session.user
            _event("mfa_joined_in_flight", username=user.username, provider=user.provider)
        return body

    async def _verify(
        self, session: Session, method: MfaMethod, request: OtpRequest
    ) -> dict[str, Any]:
        record, user = session.record, session.user
        reservation = await self._guard.reserve(user.dn, method.lockout)
        if not reservation.admitted:
            _event("mfa_refused_locked", username=user.username, provider=user.provider)
            raise errors.authentication_failed(LOCKED_OUT)
        state = request.state if request.state is not None else record.challenge_state
        try:
            verdict = await method.verify(user, request.otp, state, session.seed)
        except Exception:
            await self._guard.no_verdict(user.dn, reservation)
            raise
        who = {"username": user.username, "provider": user.provider}
        if isinstance(verdict, Accepted):
            await self._guard.succeeded(user.dn)
            value, new_record = await self._advance(record, user, Stage.MFA)
            _event("mfa_ok", **who, **verdict.detail)
            return self._login_response(user, value, new_record)
        if isinstance(verdict, Rejected):
            _event("mfa_failed", **who, **verdict.detail)
            if reservation.tripped:
                _event("lockout", key=user.dn, until=_iso(reservation.locked_until))
                raise errors.authentication_failed(LOCKED_OUT)
            raise _refusal(verdict)
        await self._guard.no_verdict(user.dn, reservation)  # no verdict: not a guess
        if isinstance(verdict, ChallengeAgain):
            await self._store.set_challenge_state(record.token_hash, verdict.body.get("state"))
            _event("mfa_challenged_again", **who, **verdict.detail)
            return verdict.body
        _event("mfa_no_verdict", **who, outcome=type(verdict).__name__)
        raise _refusal(verdict)

    async def authorize(self, token: str | None) -> dict[str, Any]:
        session = await self.resolve(token)
        record, user = session.record, session.user
        if record.stage == Stage.FULL:
            assert token is not None
            return self._login_response(user, token, record)
        if record.stage == Stage.PARTIAL and user.mfa_provider is not None:
            raise errors.mfa_required()
        if record.stage == Stage.PARTIAL:
            # A user who owes no MFA: the partial token stays usable here, because the
            # vendor's CLI asks /authorization twice with it (once to learn that no OTP is
            # owed, once for the token it keeps); each answer is a new full token of the
            # same session, and logout ends them all.
            value, new_record = await self._add_to_session(record, user, Stage.FULL)
        else:
            value, new_record = await self._advance(record, user, Stage.FULL)
        _event("authorized", username=user.username, provider=user.provider)
        return self._login_response(user, value, new_record)

    async def _add_to_session(
        self, record: TokenRecord, user: UserInfo, stage: Stage
    ) -> tuple[str, TokenRecord]:
        issued = issue_token(
            session_id=record.session_id,
            provider=user.provider,
            username=user.username,
            stage=stage,
            expires_at=self._expiry(),
        )
        await self._store.add_token(issued.record)
        return issued.value, issued.record

    async def logout(self, token: str | None) -> None:
        session = await self.resolve(token)
        await self._store.revoke_session(session.record.session_id)
        _event("logout", username=session.user.username, provider=session.user.provider)

    async def _admin(self, token: str | None) -> UserInfo:
        user = (await self.resolve(token, Stage.FULL)).user
        if not user.admin:
            raise errors.forbidden()
        return user

    @staticmethod
    def _seed_view(seed: SeedRecord) -> dict[str, Any]:
        return {
            "userDistinguishedName": seed.dn,
            "username": seed.username,
            "providerName": seed.provider,
            "verified": seed.verified,
        }

    async def list_seeds(self, token: str | None, query: str | None) -> dict[str, Any]:
        await self._admin(token)
        seeds = [self._seed_view(s) for s in await self._store.list_seeds()]
        if query:
            needle = query.casefold()
            seeds = [s for s in seeds if needle in s["userDistinguishedName"].casefold()]
        body: dict[str, Any] = {
            "range": f"0-{len(seeds)}/{len(seeds)}",
            "orderBy": "userDistinguishedName",
            "descending": False,
            "filterBy": [],
            "data": seeds,
        }
        if query:
            body["query"] = query
        return body

    async def delete_seed(self, token: str | None, dn: str) -> None:
        admin = await self._admin(token)
        if not await self._store.delete_seed(dn):
            raise errors.not_found(f"No seed for {dn}.")
        _event("seed_deleted", dn=dn, by=admin.username)

    async def purge(self) -> None:
        """Expired tokens, sessions, push answers and idle lockout rows."""
        now = self._clock()
        await self._store.purge(now, now - self._lockout_retention)
