"""The login flow as plain async methods: credentials -> partial token -> MFA -> full token.

Every method takes already-validated input and either returns the response body or raises an
ApiError; nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from server import errors
from server.config import Settings
from server.mfa.base import Accepted, ChallengeAgain, MfaMethod, Rejected
from server.mfa.lockout import LockoutPolicy, after_failure, after_success, is_locked
from server.schemas import InitializeRequest, LoginRequest, OtpRequest
from server.store.base import LockoutRecord, SeedRecord, Stage, Store, TokenRecord
from server.tokens import hash_token, issue_token, new_session_id
from server.users import UserDirectory, UserInfo

audit = logging.getLogger("mfa.audit")

INVALID_CREDENTIALS = "Invalid username or password."
UNKNOWN_PROVIDER = "Unknown identity provider."
LOCKED_OUT = "Too many failed attempts. Try again later."
ADMIN_PRIVILEGES = [{"type": "All", "target": "All"}]


def _iso(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _event(name: str, **fields: Any) -> None:
    audit.info(name, extra={"fields": {"event": name, **fields}})


class LoginService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        methods: dict[str, MfaMethod],
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._store = store
        self._methods = methods
        self._clock = clock
        self._users = UserDirectory(settings)
        self._login_lockout = LockoutPolicy.from_settings(settings.server.login_lockout)
        self._in_flight: dict[str, asyncio.Future[dict[str, Any]]] = {}

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

    async def resolve(self, token: str | None, *stages: Stage) -> tuple[TokenRecord, UserInfo]:
        """The live token and its user, or 401 if it is unknown, expired, revoked or at a stage
        not in ``stages``."""
        if not token:
            raise errors.token_error()
        record = await self._store.get_token(hash_token(token))
        if record is None or record.revoked or record.expires_at <= self._clock():
            raise errors.token_error()
        user = self._users.find(record.provider, record.username)
        if user is None:  # removed from the configuration since the token was issued
            raise errors.token_error()
        if stages and record.stage not in stages:
            raise errors.token_error()
        return record, user

    async def _advance(
        self, old: TokenRecord, user: UserInfo, stage: Stage
    ) -> tuple[str, TokenRecord]:
        issued = issue_token(
            session_id=old.session_id,
            provider=user.provider,
            username=user.username,
            stage=stage,
            expires_at=min(self._expiry(), old.expires_at)
            if stage != Stage.FULL
            else self._expiry(),
        )
        if not await self._store.replace_token(old.token_hash, issued.record):
            raise errors.token_error()  # a concurrent request already used this token
        return issued.value, issued.record

    async def _count_failure(
        self, key: str, policy: LockoutPolicy, before: LockoutRecord, event: str
    ) -> bool:
        """Count one failure for ``key``; True when it just locked (and that is logged)."""
        now = self._clock()
        after = await self._store.update_lockout(key, lambda cur: after_failure(cur, now, policy))
        if is_locked(after, now) and after.locked_until != before.locked_until:
            _event(
                event, key=key, lockouts=after.lockouts, seconds=round(after.locked_until - now, 3)
            )
            return True
        return False

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
        if self._settings.identity_provider(request.providerName) is None:
            _event("login_failed", provider=request.providerName, cause="unknown provider")
            raise errors.authentication_failed(UNKNOWN_PROVIDER)
        # Password guessing is throttled per account, known or not (so the answer does not
        # tell which accounts exist); while locked, right and wrong passwords get one answer.
        key = f"login:{request.providerName}:{request.username}"
        before = await self._store.get_lockout(key)
        if is_locked(before, self._clock()):
            _event("login_refused_locked", provider=request.providerName, username=request.username)
            raise errors.authentication_failed(LOCKED_OUT)
        check = (request.providerName, request.username, request.password)
        if self._users.uses_scrypt(request.providerName):  # ~50 ms of CPU: off the event loop
            user = await asyncio.to_thread(self._users.check_password, *check)
        else:  # clear-text demo passwords compare in microseconds; a thread hop costs more
            user = self._users.check_password(*check)
        if user is None:
            _event("login_failed", provider=request.providerName, username=request.username)
            if await self._count_failure(key, self._login_lockout, before, "login_lockout"):
                raise errors.authentication_failed(LOCKED_OUT)
            raise errors.authentication_failed(INVALID_CREDENTIALS)
        if before.failures or before.lockouts:
            await self._store.update_lockout(key, after_success)
        issued = issue_token(
            session_id=new_session_id(),
            provider=user.provider,
            username=user.username,
            stage=Stage.PARTIAL,
            expires_at=self._expiry(),
        )
        await self._store.insert_token(issued.record)
        _event("login_ok", provider=user.provider, username=user.username, mfa=user.mfa_provider)
        return self._login_response(user, issued.value, issued.record)

    async def initialize(
        self, session: tuple[TokenRecord, UserInfo], request: InitializeRequest
    ) -> dict[str, Any]:
        """``session`` comes from ``resolve(token, Stage.PARTIAL)``, done before the body is
        read so that a token error wins over a body error."""
        _record, user = session
        method = self._method_for(user)
        if method is None:
            raise errors.token_error("This user has no multi-factor authentication to initialize.")
        result = await method.initialize(user, request.userPassword)
        _event(
            "mfa_initialized",
            username=user.username,
            provider=user.provider,
            type=result.body["type"],
            **result.detail,
        )
        return result.body

    async def verify_otp(
        self, session: tuple[TokenRecord, UserInfo], request: OtpRequest
    ) -> dict[str, Any]:
        record, user = session
        method = self._method_for(user)
        if method is None:
            raise errors.token_error("This user has no multi-factor authentication to complete.")
        if not method.joins_retries:
            return await self._verify(record, user, method, request)
        # A retried /otp for a push already in flight joins it: one Access-Request (one prompt
        # on the phone), and every caller gets the same outcome.
        pending = self._in_flight.get(record.token_hash)
        if pending is None:
            pending = asyncio.ensure_future(self._verify(record, user, method, request))
            self._in_flight[record.token_hash] = pending
            pending.add_done_callback(lambda _: self._in_flight.pop(record.token_hash, None))
        else:
            _event("mfa_joined_in_flight", username=user.username, provider=user.provider)
        return await asyncio.shield(pending)

    async def _verify(
        self, record: TokenRecord, user: UserInfo, method: MfaMethod, request: OtpRequest
    ) -> dict[str, Any]:
        lockout = await self._store.get_lockout(user.dn)
        if is_locked(lockout, self._clock()):
            _event("mfa_refused_locked", username=user.username, provider=user.provider)
            raise errors.authentication_failed(LOCKED_OUT)
        verdict = await method.verify(user, request.otp, request.state)
        if isinstance(verdict, ChallengeAgain):
            _event(
                "mfa_challenged_again", username=user.username, provider=user.provider,
                **verdict.detail,
            )  # fmt: skip
            return verdict.body
        if isinstance(verdict, Rejected):
            failed_event = {"username": user.username, "provider": user.provider}
            _event("mfa_failed", **failed_event, **verdict.detail)
            if await self._count_failure(user.dn, method.lockout, lockout, "lockout"):
                raise errors.authentication_failed(LOCKED_OUT)
            raise errors.authentication_failed(verdict.reason)
        assert isinstance(verdict, Accepted)
        if lockout.failures or lockout.lockouts:
            await self._store.update_lockout(user.dn, after_success)
        value, new_record = await self._advance(record, user, Stage.MFA)
        _event("mfa_ok", username=user.username, provider=user.provider, **verdict.detail)
        return self._login_response(user, value, new_record)

    async def authorize(self, token: str | None) -> dict[str, Any]:
        record, user = await self.resolve(token)
        if record.stage == Stage.FULL:
            assert token is not None
            return self._login_response(user, token, record)
        if record.stage == Stage.PARTIAL and user.mfa_provider is not None:
            raise errors.mfa_required()
        value, new_record = await self._advance(record, user, Stage.FULL)
        _event("authorized", username=user.username, provider=user.provider)
        return self._login_response(user, value, new_record)

    async def logout(self, token: str | None) -> None:
        record, user = await self.resolve(token)
        await self._store.revoke_session(record.session_id)
        _event("logout", username=user.username, provider=user.provider)

    async def _admin(self, token: str | None) -> UserInfo:
        _record, user = await self.resolve(token, Stage.FULL)
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
