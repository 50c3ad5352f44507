"""Lockout after repeated wrong codes, as pure functions of a record and the time.

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


def is_locked(record: LockoutRecord, now: float) -> bool:
    return now < record.locked_until


def after_failure(record: LockoutRecord, now: float, policy: LockoutPolicy) -> LockoutRecord:
    if is_locked(record, now):  # attempts while locked neither count nor extend the lock
        return record
    failures = record.failures + 1
    if failures < policy.max_failed_attempts:
        return replace(record, failures=failures)
    lockouts = record.lockouts + 1
    return replace(
        record,
        failures=0,
        lockouts=lockouts,
        locked_until=now + policy.cooldown_for(lockouts),
    )


def after_success(record: LockoutRecord) -> LockoutRecord:
    return LockoutRecord(record.dn)
