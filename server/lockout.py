"""Lockout after repeated failures, as pure functions of a record and the time.

An attempt is reserved before it is evaluated, in the same atomic step that checks the lock:
the reservation counts as a failure until it is settled. The reservation that uses up the
last allowed attempt locks at once, so concurrent requests (on any number of processes) are
refused while it is evaluated, and at most ``max_failed_attempts`` guesses are ever evaluated
per cooldown. Settling then decides: a success clears everything; an attempt that got no
verdict (the RADIUS server did not answer) is given back, lifting the lock it tripped; a wrong
one stays counted, and if it tripped the lock, that lock stands (one lockout, one event).

The cooldown doubles with each lockout in a row but is capped, so a lockout always ends and
cannot be turned into a permanent denial of service against a user.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from server.config import LockoutSettings
from server.store.base import LockoutRecord


@dataclass(frozen=True)
class LockoutPolicy:
    max_failed_attempts: int = 5
    cooldown: float = 60.0
    max_cooldown: float = 3600.0

    @classmethod
    def from_settings(cls, settings: LockoutSettings) -> LockoutPolicy:
        return cls(settings.max_failed_attempts, settings.cooldown, settings.max_cooldown)

    def cooldown_for(self, lockouts: int) -> float:
        """Cooldown of the ``lockouts``-th lockout in a row (1-based)."""
        exponent = min(max(lockouts - 1, 0), 32)
        return float(min(self.cooldown * (2**exponent), self.max_cooldown))


@dataclass(frozen=True)
class Reservation:
    """The outcome of ``reserve``: whether the attempt may be evaluated, and whether it is the
    one that locked (then ``locked_until`` is the lock it set)."""

    admitted: bool
    tripped: bool = False
    locked_until: float = 0.0


def is_locked(record: LockoutRecord, now: float) -> bool:
    return now < record.locked_until


def reserve(
    record: LockoutRecord, now: float, policy: LockoutPolicy
) -> tuple[LockoutRecord, Reservation]:
    if is_locked(record, now):  # refused attempts neither count nor extend the lock
        return record, Reservation(admitted=False)
    failures = 0 if record.locked_until else record.failures  # a lock that ended: a new count
    failures += 1
    if failures < policy.max_failed_attempts:
        new = replace(record, failures=failures, locked_until=0.0, updated_at=now)
        return new, Reservation(admitted=True)
    lockouts = record.lockouts + 1
    until = now + policy.cooldown_for(lockouts)
    new = replace(record, failures=failures, lockouts=lockouts, locked_until=until, updated_at=now)
    return new, Reservation(admitted=True, tripped=True, locked_until=until)


def after_success(record: LockoutRecord) -> LockoutRecord:
    return LockoutRecord(record.key, updated_at=record.updated_at)


def give_back(record: LockoutRecord, reservation: Reservation) -> LockoutRecord:
    """Undo a reservation whose attempt got no verdict (and lift the lock it tripped, unless
    that lock has been replaced since)."""
    failures = max(record.failures - 1, 0)
    if reservation.tripped and record.locked_until == reservation.locked_until:
        lockouts = max(record.lockouts - 1, 0)
        return replace(record, failures=failures, lockouts=lockouts, locked_until=0.0)
    return replace(record, failures=failures)
