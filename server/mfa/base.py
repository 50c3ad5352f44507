# -*- test-case-name: tests.test_builtin_totp, tests.test_radius_units -*-
"""What every MFA method offers the login service, and the outcomes it answers with.

Methods know nothing of HTTP: they return outcomes, and the service maps each to a response
in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from appgate_mfa_server.lockout import LockoutPolicy
from appgate_mfa_server.push_limit import PushLimit
from appgate_mfa_server.store.base import SeedRecord
from appgate_mfa_server.users import UserInfo


@dataclass(slots=True)  # not frozen: a frozen init costs 3 us, and these are made per request
class Initialized:
    body: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)  # for the audit log only
    challenged: bool = False  # the body is a Challenge the RADIUS server really issued


@dataclass(slots=True)
class NeedsInput:
    """The request lacks something this method needs (a field of the body)."""

    field: str
    message: str


@dataclass(slots=True)
class Accepted:
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Rejected:
    """A wrong answer: it counts towards the lockout."""

    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ChallengeAgain:
    """The provider asks another question before it decides (a further RADIUS challenge):
    no success yet, so it counts towards the lockout like a wrong answer."""

    body: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Unavailable:
    """No verdict: the provider did not answer (``invalid``: answers came but none verified)."""

    message: str
    invalid: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class BadState:
    """The client's ``state`` cannot be used; ``malformed`` tells a typo from a forgery."""

    reason: str
    malformed: bool = False


InitializeOutcome = Initialized | NeedsInput | Rejected | Unavailable
Verdict = Accepted | Rejected | ChallengeAgain | Unavailable | BadState | NeedsInput


class MfaMethod(Protocol):
    lockout: LockoutPolicy
    # True when a verification triggers something outside (a push to a phone): a retried /otp
    # for the same token then joins the one in flight instead of starting another.
    joins_retries: bool
    # How long one verification may take (a push waits for the phone); joiners wait as long.
    verify_budget: float
    # True when initialize passes a secret from the client on to be checked (a RADIUS
    # Challenge with the user's password): then initialize is a guess, under the lockout.
    initialize_guesses: bool
    # How many pushes a user may get in a window (Push mode), or None: sends no pushes.
    push_limit: PushLimit | None
    # The most Challenges one partial token may get from the provider, or 0: issues none.
    max_challenge_rounds: int

    async def initialize(
        self, user: UserInfo, user_password: str | None, seed: SeedRecord | None
    ) -> InitializeOutcome: ...

    async def verify(
        self, user: UserInfo, otp: str, state: str | None, seed: SeedRecord | None
    ) -> Verdict: ...
