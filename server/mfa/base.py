"""What every MFA method offers the login service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from server.mfa.lockout import LockoutPolicy
from server.users import UserInfo


@dataclass(frozen=True)
class Accepted:
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


Verdict = Accepted | Rejected


class MfaMethod(Protocol):
    lockout: LockoutPolicy

    async def initialize(self, user: UserInfo, user_password: str | None) -> dict[str, Any]: ...

    async def verify(self, user: UserInfo, otp: str, state: str | None) -> Verdict: ...
