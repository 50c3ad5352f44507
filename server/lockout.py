"""Every guess (a password, an OTP, a RADIUS challenge's answer) goes through here: admit,
evaluate, settle. The rules are pure functions of a record and the time; ``LockoutGuard``
applies them atomically through the store, so they hold across any number of processes.

The budget: a key (an account) may have at most ``max_failed_attempts`` wrong verdicts
between two successes. An attempt is admitted only while the settled wrong verdicts plus the
attempts in flight stay within that budget, so at most that many wrong guesses are ever
evaluated, however many arrive at once. An attempt that arrives while the rest of the budget is
in flight waits (here or on another process) until those settle, then is admitted or refused
by the settled count: a right answer is never refused because other attempts were in flight.

Settling: a wrong verdict counts, and the one that uses up the budget locks the key for a
cooldown that doubles with each lock in a row, up to a cap (so a lock always ends and cannot be
turned into a permanent denial of service); a success clears everything; an attempt without a
verdict (the RADIUS server did not answer) only gives its place back. An attempt in flight holds
its place for a lease at most, so a process that dies mid-evaluation frees it in time.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace

from appgate_mfa_server.config import LockoutSettings
from appgate_mfa_server.store.base import LockoutRecord, Pending, Store

MAX_KEY_CHARS = 200
DEFAULT_LEASE = 30.0  # an attempt's place in the budget, at most, if it is never settled
POLL_SECONDS = 0.05  # how often a waiting attempt looks for settles made by other processes


def lockout_key(*parts: str) -> str:
    """The store key for a lockout; long ones (user names are the client's) are hashed, so a
    row's size does not depend on what a client sends."""
    key = ":".join(parts)
    if len(key) <= MAX_KEY_CHARS:
        return key
    return f"{parts[0]}:sha256:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"


def login_key(provider: str, username: str) -> str:
    """Password guessing is counted per account, known or not."""
    return lockout_key("login", provider, username)


def mfa_key(dn: str) -> str:
    """Second-factor guesses of a user: initialize (when it checks a password) and /otp share
    one budget. The distinguished name of a configured user, so never a client's string."""
    return dn


@dataclass(frozen=True)
class LockoutPolicy:
    max_failed_attempts: int = 5
    cooldown: float = 60.0
    max_cooldown: float = 3600.0
    lease: float = DEFAULT_LEASE  # longer than any evaluation may take

    @classmethod
    def from_settings(
        cls, settings: LockoutSettings, lease: float = DEFAULT_LEASE
    ) -> LockoutPolicy:
        return cls(settings.max_failed_attempts, settings.cooldown, settings.max_cooldown, lease)

    def cooldown_for(self, lockouts: int) -> float:
        """Cooldown of the ``lockouts``-th lockout in a row (1-based)."""
        exponent = min(max(lockouts - 1, 0), 32)
        return float(min(self.cooldown * (2**exponent), self.max_cooldown))


class Verdict(enum.Enum):
    RIGHT = "right"
    WRONG = "wrong"
    NONE = "none"  # not evaluated, or no answer (a RADIUS timeout): not a guess


class Admission(enum.Enum):
    ADMITTED = "admitted"
    LOCKED = "locked"
    WAIT = "wait"  # the rest of the budget is in flight


def is_locked(record: LockoutRecord, now: float) -> bool:
    return now < record.locked_until


def _lock(record: LockoutRecord, now: float, policy: LockoutPolicy) -> LockoutRecord:
    lockouts = record.lockouts + 1
    return replace(
        record, lockouts=lockouts, locked_until=now + policy.cooldown_for(lockouts), updated_at=now
    )


def _live(pending: tuple[Pending, ...], now: float, leaving: str = "") -> tuple[Pending, ...]:
    """The attempts still in flight: leases not yet run out, ``leaving`` (settled) dropped."""
    return tuple(p for p in pending if p.until > now and p.id != leaving)


def admit(
    record: LockoutRecord, now: float, policy: LockoutPolicy, attempt_id: str
) -> tuple[LockoutRecord, Admission]:
    """Whether the attempt ``attempt_id`` may be evaluated now; if so it is in flight in the
    returned record. Attempts refused or told to wait change nothing but expired leases."""
    live = _live(record.pending, now)
    if is_locked(record, now):  # refused attempts neither count nor extend the lock
        return replace(record, pending=live), Admission.LOCKED
    if record.locked_until:  # a lock that ended: a new count
        record = replace(record, failures=0, locked_until=0.0)
    record = replace(record, pending=live)
    if record.failures >= policy.max_failed_attempts:  # the limit was lowered meanwhile
        return _lock(record, now, policy), Admission.LOCKED
    if record.failures + len(live) >= policy.max_failed_attempts:
        return record, Admission.WAIT
    admitted = replace(record, pending=(*live, Pending(attempt_id, now + policy.lease)))
    return replace(admitted, updated_at=now), Admission.ADMITTED


def settle(
    record: LockoutRecord, now: float, policy: LockoutPolicy, attempt_id: str, verdict: Verdict
) -> tuple[LockoutRecord, bool]:
    """The record once ``attempt_id`` has its verdict, and whether this verdict locked."""
    pending = _live(record.pending, now, leaving=attempt_id)
    if verdict is Verdict.RIGHT:
        return LockoutRecord(record.key, updated_at=now, pending=pending), False
    if verdict is Verdict.NONE:
        return replace(record, pending=pending), False
    if is_locked(record, now):  # counted, but the lock stands as it is (one lock, one event)
        return replace(record, failures=record.failures + 1, pending=pending, updated_at=now), False
    failures = (0 if record.locked_until else record.failures) + 1
    counted = replace(record, failures=failures, locked_until=0.0, pending=pending, updated_at=now)
    if failures < policy.max_failed_attempts:
        return counted, False
    return _lock(counted, now, policy), True


class Locked(Exception):
    """The key is locked; ``until`` is when the lock ends."""

    def __init__(self, until: float) -> None:
        super().__init__(f"locked until {until}")
        self.until = until


class StillInFlight(Exception):
    """The attempt waited a whole lease and the budget was still in flight (other attempts kept
    taking it): refused without an evaluation."""


class Attempt:
    """One admitted guess: record its verdict; the guard settles it when the block ends."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.id = secrets.token_hex(8)
        self.verdict = Verdict.NONE
        self.tripped = False  # set once settled: this verdict locked the key
        self.locked_until = 0.0

    def right(self) -> None:
        self.verdict = Verdict.RIGHT

    def wrong(self) -> None:
        self.verdict = Verdict.WRONG


class _Line:
    """The attempts of one key waiting in this process, first come first served: only the
    first asks the store (so a crowd of waiters costs one query per poll), and a settle made
    here wakes it at once."""

    def __init__(self) -> None:
        self.turns: deque[asyncio.Event] = deque()
        self.settled = asyncio.Event()


class LockoutGuard:
    def __init__(
        self, store: Store, clock: Callable[[], float], *, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self._store = store
        self._clock = clock
        self._poll = poll_seconds
        self._lines: dict[str, _Line] = {}

    @asynccontextmanager
    async def attempt(self, key: str, policy: LockoutPolicy) -> AsyncIterator[Attempt]:
        """Admit a guess (waiting while the rest of the budget is in flight), then settle it
        with the verdict recorded in the block; an exception leaves the verdict as it was
        recorded (none, unless the guess had been judged). Raises ``Locked`` or
        ``StillInFlight`` instead of admitting."""
        attempt = Attempt(key)
        await self._admit(attempt, policy)
        try:
            yield attempt
        finally:
            # shielded: a client that hangs up must not leave its place taken for a lease
            await asyncio.shield(self._settle(attempt, policy))

    async def _try(self, attempt: Attempt, policy: LockoutPolicy) -> Admission:
        now = self._clock()
        outcome: list[Admission] = []

        def apply(record: LockoutRecord) -> LockoutRecord:
            new, admission = admit(record, now, policy, attempt.id)
            outcome.append(admission)
            attempt.locked_until = new.locked_until
            return new

        await self._store.update_lockout(attempt.key, apply)
        if outcome[-1] is Admission.LOCKED:
            raise Locked(attempt.locked_until)
        return outcome[-1]

    async def _admit(self, attempt: Attempt, policy: LockoutPolicy) -> None:
        line = self._lines.get(attempt.key)
        just_tried = line is None
        if line is None:  # nobody waits here: try at once
            if await self._try(attempt, policy) is Admission.ADMITTED:
                return
            line = self._lines.setdefault(attempt.key, _Line())
        turn = asyncio.Event()
        line.turns.append(turn)
        if len(line.turns) == 1:
            turn.set()
        give_up = time.monotonic() + policy.lease
        try:
            with suppress(TimeoutError):
                await asyncio.wait_for(turn.wait(), give_up - time.monotonic())
            while True:
                left = give_up - time.monotonic()
                if not turn.is_set() or left <= 0:
                    raise StillInFlight()
                if not just_tried:
                    line.settled.clear()  # before the query: a settle during it is not missed
                    if await self._try(attempt, policy) is Admission.ADMITTED:
                        return
                just_tried = False
                with suppress(TimeoutError):
                    await asyncio.wait_for(line.settled.wait(), min(self._poll, left))
        finally:
            line.turns.remove(turn)
            if line.turns:
                line.turns[0].set()
            elif self._lines.get(attempt.key) is line:
                del self._lines[attempt.key]

    async def _settle(self, attempt: Attempt, policy: LockoutPolicy) -> None:
        now = self._clock()

        def apply(record: LockoutRecord) -> LockoutRecord:
            new, attempt.tripped = settle(record, now, policy, attempt.id, attempt.verdict)
            attempt.locked_until = new.locked_until
            return new

        await self._store.update_lockout(attempt.key, apply)
        line = self._lines.get(attempt.key)
        if line is not None:
            line.settled.set()
