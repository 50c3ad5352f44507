# -*- test-case-name: tests.test_shared_accounts, tests.test_radius_units -*-
"""At most ``limit`` pushes per account in any ``window`` of time, answered or not.

A push prompts a phone, so a client that keeps starting logins could prompt a user until they
approve one by mistake ("push fatigue"). The lockout does not stop that: a push that nobody
answers is no wrong guess. So every push sent is counted per account, in the store (across
processes), and one beyond the limit is refused with the time it may be retried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from appgate_mfa_server.store.base import Store


@dataclass(frozen=True)
class PushLimit:
    limit: int = 5
    window: float = 600.0


def take(sent: tuple[float, ...], now: float, rule: PushLimit) -> tuple[tuple[float, ...], float]:
    """The pushes of the window once one more is sent now, or, when the window is full, the
    pushes as they are and the time from which the next one may go (else 0)."""
    recent = tuple(t for t in sent if now - rule.window < t <= now)
    if len(recent) >= rule.limit:
        return recent, min(recent) + rule.window
    return (*recent, now), 0.0


class PushLimiter:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def take(self, key: str, rule: PushLimit) -> float:
        """Count a push for ``key``; 0 if it may go, else the time from which one may."""
        now = self._clock()
        retry_at = [0.0]

        def apply(sent: tuple[float, ...]) -> tuple[float, ...]:
            new, retry_at[0] = take(sent, now, rule)
            return new

        await self._store.update_push_window(key, apply)
        return retry_at[0]
