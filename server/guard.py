"""The lockout guard around every guess (a password, an OTP): reserve, evaluate, settle.

``reserve`` checks the lock and counts the attempt in one atomic step of the store, before the
guess is evaluated, so a burst of concurrent guesses on any number of processes cannot get more
than the policy allows evaluated (see server/lockout.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from server.lockout import LockoutPolicy, Reservation, after_success, give_back, reserve
from server.store.base import LockoutRecord, Store

MAX_KEY_CHARS = 200


def lockout_key(*parts: str) -> str:
    """The store key for a lockout; long ones (user names are the client's) are hashed, so a
    row's size does not depend on what a client sends."""
    key = ":".join(parts)
    if len(key) <= MAX_KEY_CHARS:
        return key
    return f"{parts[0]}:sha256:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"


class LockoutGuard:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def reserve(self, key: str, policy: LockoutPolicy) -> Reservation:
        now = self._clock()
        outcome: list[Reservation] = []

        def apply(record: LockoutRecord) -> LockoutRecord:
            new, reservation = reserve(record, now, policy)
            outcome.append(reservation)
            return new

        await self._store.update_lockout(key, apply)
        return outcome[-1]

    async def succeeded(self, key: str) -> None:
        await self._store.update_lockout(key, after_success)

    async def no_verdict(self, key: str, reservation: Reservation) -> None:
        await self._store.update_lockout(key, lambda record: give_back(record, reservation))
