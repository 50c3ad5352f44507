"""What every MFA method offers the login service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from server.mfa.lockout import LockoutPolicy
from server.users import UserInfo


@dataclass(frozen=True)
class Initialized:
    body: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)  # for the audit log only


@dataclass(frozen=True)
class Accepted:
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChallengeAgain:
    """The provider asks another question before it decides (a second RADIUS challenge)."""

    body: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)


Verdict = Accepted | Rejected | ChallengeAgain


class MfaMethod(Protocol):
    lockout: LockoutPolicy
    # True when a verification triggers something outside (a push to a phone): a retried /otp
    # for the same token then joins the one in flight instead of starting another.
    joins_retries: bool

    async def initialize(self, user: UserInfo, user_password: str | None) -> Initialized: ...

    async def verify(self, user: UserInfo, otp: str, state: str | None) -> Verdict: ...
