# -*- test-case-name: tests.test_login_flow, tests.test_lockout, tests.test_challenge_rounds -*-
"""The login flow as plain async methods: credentials -> partial token -> MFA -> full token.

Every method takes already-validated plain values (the HTTP layer parses the bodies) and either
returns the response body or raises an ApiError; the outcomes of MFA methods become errors in
one place (``_refusal``). Every guess (a password, an OTP, a RADIUS challenge's answer) goes
through one guard (``_guess``, on server/lockout.py): admitted within the account's budget,
evaluated, settled by its verdict.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from appgate_mfa_server import errors, logs
from appgate_mfa_server.config import Settings
from appgate_mfa_server.lockout import (
    Attempt,
    Locked,
    LockoutGuard,
    LockoutPolicy,
    StillInFlight,
    login_key,
    mfa_key,
)
from appgate_mfa_server.mfa.base import (
    Accepted,
    BadState,
    ChallengeAgain,
    Initialized,
    MfaMethod,
    NeedsInput,
    Rejected,
    Unavailable,
)
from appgate_mfa_server.push_join import PushJoiner
from appgate_mfa_server.push_limit import PushLimiter
from appgate_mfa_server.store.base import SeedRecord, Stage, Store, TokenRecord
from appgate_mfa_server.tokens import hash_token, issue_token, new_session_id
from appgate_mfa_server.users import UserDirectory, UserInfo

INVALID_CREDENTIALS = "Invalid username or password."
UNKNOWN_PROVIDER = "Unknown identity provider."
LOCKED_OUT = "Too many failed attempts. Try again later."
STILL_IN_FLIGHT = "Other attempts for this account are still being checked. Try again."
TOO_MANY_ROUNDS = "Too many challenge rounds: this login has ended. Log in again."
ANOTHER_ROUND = "The RADIUS server asks for another code."
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


def _seconds(value: float) -> str:
    return f"{value:g} s"


_event = logs.audit
Scope = Literal["login", "mfa"]
# audit events per lockout scope: (a guess refused while locked, the guess that locked)
_LOCK_EVENTS: dict[Scope, tuple[str, str]] = {
    "login": ("login_refused_locked", "login_lockout"),
    "mfa": ("mfa_refused_locked", "lockout"),
}


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a client logs in with."""

    provider: str
    username: str
    password: str


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
            return errors.radius_invalid_response(outcome.message)
        return errors.radius_timeout(outcome.message)
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
        self._push_limits = PushLimiter(store, clock)
        self._users = UserDirectory(settings)
        self._login_lockout = LockoutPolicy.from_settings(settings.server.login_lockout)
        # lockout rows and push windows are kept while they still matter
        kept = [self._login_lockout.max_cooldown]
        kept += [m.lockout.max_cooldown for m in methods.values()]
        kept += [m.push_limit.window for m in methods.values() if m.push_limit is not None]
        self._retention = max(MIN_LOCKOUT_RETENTION, *kept)

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

    @asynccontextmanager
    async def _guess(
        self, scope: Scope, key: str, policy: LockoutPolicy, who: dict[str, Any]
    ) -> AsyncIterator[Attempt]:
        """The one sequence of every guess: admitted (or refused while the account is locked),
        evaluated in the block, settled by the verdict the block recorded. The guess that
        locks is told by ``attempt.tripped`` once the block is over."""
        refused_event, lockout_event = _LOCK_EVENTS[scope]
        try:
            async with self._guard.attempt(key, policy) as attempt:
                yield attempt
        except Locked:
            _event(refused_event, **who)
            raise errors.authentication_failed(LOCKED_OUT) from None
        except StillInFlight:
            _event("attempt_still_in_flight", scope=scope, **who)
            raise errors.authentication_failed(STILL_IN_FLIGHT) from None
        if attempt.tripped:
            _event(lockout_event, key=key, until=_iso(attempt.locked_until))

    async def _check_password(self, credentials: Credentials) -> UserInfo:
        """The user whose credentials these are, through the login lockout, or 401."""
        provider, username = credentials.provider, credentials.username
        if self._settings.identity_provider(provider) is None:
            _event("login_failed", provider=provider, cause="unknown provider")
            raise errors.authentication_failed(UNKNOWN_PROVIDER)
        # Password guessing is throttled per account, known or not (so the answer does not
        # tell which accounts exist); while locked, right and wrong passwords get one answer.
        key = login_key(provider, username)
        who = {"provider": provider, "username": username}
        async with self._guess("login", key, self._login_lockout, who) as attempt:
            check = (provider, username, credentials.password)
            if self._users.uses_scrypt(provider):  # ~50 ms of CPU: off the loop
                user = await asyncio.to_thread(self._users.check_password, *check)
            else:  # clear-text demo passwords compare in microseconds; a thread hop costs more
                user = self._users.check_password(*check)
            if user is None:
                attempt.wrong()
            else:
                attempt.right()
        if user is None:
            _event("login_failed", **who)
            raise errors.authentication_failed(
                LOCKED_OUT if attempt.tripped else INVALID_CREDENTIALS
            )
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

    async def authenticate(self, credentials: Credentials) -> dict[str, Any]:
        user = await self._check_password(credentials)
        value, record = await self._new_session(user, Stage.PARTIAL)
        _event("login_ok", provider=user.provider, username=user.username, mfa=user.mfa_provider)
        return self._login_response(user, value, record)

    async def login(self, credentials: Credentials) -> dict[str, Any]:
        """The vendor's Simplified Login: a full token at once, for users who owe no MFA."""
        user = await self._check_password(credentials)
        if user.mfa_provider is not None:
            _event("login_refused_mfa", provider=user.provider, username=user.username)
            raise errors.authentication_failed(MFA_OWED)
        value, record = await self._new_session(user, Stage.FULL)
        _event("login_ok", provider=user.provider, username=user.username, mfa=None, simple=True)
        return self._login_response(user, value, record)

    async def initialize(self, session: Session, user_password: str | None) -> dict[str, Any]:
        """``session`` comes from ``resolve(token, Stage.PARTIAL, with_seed=True)``, done
        before the body is read so that a token error wins over a body error;
        ``user_password``: the client's password for the RADIUS server, if it sent one."""
        user = session.user
        method = self._method_for(user)
        if method is None:
            raise errors.authentication_failed(NO_MFA)
        who = {"username": user.username, "provider": user.provider}
        if method.max_challenge_rounds:  # a login at its limit asks the RADIUS server no more
            await self._check_rounds(session, method, session.record.challenge_rounds + 1)
        if method.initialize_guesses:  # the client's password goes to RADIUS: a guess
            async with self._guess("mfa", mfa_key(user.dn), method.lockout, who) as attempt:
                outcome = await method.initialize(user, user_password, session.seed)
                if isinstance(outcome, Rejected):
                    attempt.wrong()  # a right password is no success of the MFA: no verdict
            if attempt.tripped:
                raise errors.authentication_failed(LOCKED_OUT)
        else:
            outcome = await method.initialize(user, user_password, session.seed)
        if not isinstance(outcome, Initialized):
            _event("mfa_initialize_failed", **who, outcome=type(outcome).__name__)
            raise _refusal(outcome)
        body = outcome.body
        if outcome.challenged:  # its State is kept for a client that does not send it back
            rounds = await self._store.next_challenge_round(
                session.record.token_hash, body.get("state")
            )
            await self._check_rounds(session, method, rounds)
        _event("mfa_initialized", **who, type=body["type"], **outcome.detail)
        return body

    async def _check_rounds(self, session: Session, method: MfaMethod, rounds: int) -> None:
        """A login that has had more Challenges than the provider allows ends here."""
        if rounds <= method.max_challenge_rounds:
            return
        await self._store.revoke_session(session.record.session_id)
        _event("mfa_too_many_rounds", username=session.user.username,
               provider=session.user.provider, rounds=rounds)  # fmt: skip
        raise errors.authentication_failed(TOO_MANY_ROUNDS)

    async def verify_otp(self, session: Session, otp: str, state: str | None) -> dict[str, Any]:
        """``state``: the RADIUS State the client sent back, if any."""
        method = self._method_for(session.user)
        if method is None:
            raise errors.authentication_failed(NO_MFA)
        if not method.joins_retries:
            return await self._verify(session, method, otp, state)
        # a joiner waits as long as the push may, its wait for a lockout place included
        body, joined = await self._pushes.run_once(
            session.record.token_hash,
            method.verify_budget + method.lockout.lease,
            lambda: self._verify(session, method, otp, state),
        )
        if joined:
            user = session.user
            _event("mfa_joined_in_flight", username=user.username, provider=user.provider)
        return body

    async def _verify(
        self, session: Session, method: MfaMethod, otp: str, sent_state: str | None
    ) -> dict[str, Any]:
        record, user = session.record, session.user
        who = {"username": user.username, "provider": user.provider}
        async with self._guess("mfa", mfa_key(user.dn), method.lockout, who) as attempt:
            if method.push_limit is not None:
                await self._take_push(user, method)
            state = sent_state if sent_state is not None else record.challenge_state
            verdict = await method.verify(user, otp, state, session.seed)
            if isinstance(verdict, Accepted):
                attempt.right()
            elif isinstance(verdict, Rejected | ChallengeAgain):
                attempt.wrong()
        if isinstance(verdict, Accepted):
            value, new_record = await self._advance(record, user, Stage.MFA)
            _event("mfa_ok", **who, **verdict.detail)
            return self._login_response(user, value, new_record)
        if isinstance(verdict, Rejected):
            _event("mfa_failed", **who, **verdict.detail)
            raise errors.authentication_failed(LOCKED_OUT) if attempt.tripped else _refusal(verdict)
        if isinstance(verdict, ChallengeAgain):
            _event("mfa_challenged_again", **who, **verdict.detail)
            if attempt.tripped:
                raise errors.authentication_failed(LOCKED_OUT)
            raise await self._another_round(session, method, verdict)
        _event("mfa_no_verdict", **who, outcome=type(verdict).__name__)
        raise _refusal(verdict)

    async def _another_round(
        self, session: Session, method: MfaMethod, verdict: ChallengeAgain
    ) -> errors.ApiError:
        """A further Challenge is no success: 401 with its prompt as the reason (the vendor's
        clients show it and ask for the next code). Its State stays with the token, for a
        client that never sends one; the body carries it too, for one that does."""
        state = verdict.body.get("state")
        rounds = await self._store.next_challenge_round(session.record.token_hash, state)
        await self._check_rounds(session, method, rounds)
        extra = {} if state is None else {"state": state}
        raise errors.authentication_failed(
            verdict.body.get("responseMessage", ANOTHER_ROUND), extra
        )

    async def _take_push(self, user: UserInfo, method: MfaMethod) -> None:
        """Count a push against the user's window, or refuse it with the time to retry."""
        assert method.push_limit is not None
        retry_at = await self._push_limits.take(mfa_key(user.dn), method.push_limit)
        if not retry_at:
            return
        wait = max(1, math.ceil(retry_at - self._clock()))
        rule = method.push_limit
        _event("push_limited", username=user.username, provider=user.provider,
               retryAt=_iso(retry_at))  # fmt: skip
        raise errors.authentication_failed(
            f"Too many push requests: at most {rule.limit} in {_seconds(rule.window)}. "
            f"Try again in {wait} s.",
            {"retryAfter": wait},
        )

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
        await self._store.purge(now, now - self._retention)
