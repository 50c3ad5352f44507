# -*- test-case-name: tests.test_store -*-
"""What the server keeps, and the operations on it that must be atomic.

Every operation that two requests (or two processes) may race on is one method here, so each
backend can make it atomic its own way. A token is live only while neither it nor its session
is revoked: logout revokes the session row, so a token issued at the same moment by another
process is dead too, whatever the interleaving.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from appgate_mfa_server.store.schema import SEEDS, TOKENS


class Stage(enum.StrEnum):
    PARTIAL = "partial"
    MFA = "mfa"
    FULL = "full"


@dataclass(slots=True)  # not frozen: a frozen init costs 3 us, and these are made per request
class TokenRecord:
    token_hash: str
    session_id: str
    provider: str
    username: str
    stage: Stage
    expires_at: float
    revoked: bool = False  # the token's own flag, or its session's
    challenge_state: str | None = None
    challenge_rounds: int = 0


@dataclass(slots=True)
class SeedRecord:
    dn: str
    provider: str
    username: str
    secret_blob: bytes
    verified: bool
    last_step: int | None
    created_at: float


@dataclass(frozen=True, slots=True)
class Pending:
    """An attempt in flight: it holds a place in the lockout's budget until settled, or until
    ``until`` (its lease) if the process that made it died."""

    id: str
    until: float


@dataclass(slots=True)
class LockoutRecord:
    key: str
    failures: int = 0  # wrong verdicts since the last success or the last lock's end
    lockouts: int = 0  # locks in a row, for the growing cooldown
    locked_until: float = 0.0
    updated_at: float = 0.0
    pending: tuple[Pending, ...] = ()


@dataclass(slots=True)
class PushClaim:
    """The caller runs the push (``owner``), or another does and ``result`` is its answer
    once there (sealed bytes), or None while it is still waiting."""

    owner: bool
    result: bytes | None = None


LockoutUpdate = Callable[[LockoutRecord], LockoutRecord]
PushWindowUpdate = Callable[[tuple[float, ...]], tuple[float, ...]]
Reencrypt = Callable[[SeedRecord], bytes]

# The SELECT list the decoders below expect; the same for every backend.
TOKEN_COLUMNS = ", ".join(f"t.{c.name}" for c in TOKENS.columns if c.name != "revoked")
SEED_COLUMNS = SEEDS.column_names
LOCKOUT_COLUMNS = "failures, lockouts, locked_until, updated_at, pending"
KEY_CHECK = "seed_key_check"
# Written only in the transaction that creates the tables of a new database, by a server with
# test control: the database is the test control's own (server/testcontrol/ownership.py).
TEST_CONTROL_MARK = "test_control_database"


def user_dn(provider: str, username: str) -> str:
    """The vendor's user distinguished name, ``CN=<username>,OU=<identity provider>``; the
    SQL stores join seeds to tokens with the same formula (``USER_DN_SQL``)."""
    return f"CN={username},OU={provider}"


USER_DN_SQL = "'CN=' || t.username || ',OU=' || t.provider"


def token_from_row(row: Sequence[Any]) -> TokenRecord:
    """A row of ``SELECT {TOKEN_COLUMNS}, <revoked: token's or session's>``."""
    token_hash, session_id, provider, username, stage, expires_at, state, rounds, revoked = row
    return TokenRecord(
        token_hash, session_id, provider, username, _STAGES[stage], float(expires_at),
        bool(revoked), state, int(rounds),
    )  # fmt: skip


_STAGES = {stage.value: stage for stage in Stage}


def seed_from_row(row: Sequence[Any]) -> SeedRecord:
    dn, provider, username, blob, verified, last_step, created_at = row
    return SeedRecord(
        dn, provider, username, bytes(blob), bool(verified),
        None if last_step is None else int(last_step), float(created_at),
    )  # fmt: skip


def lockout_from_row(key: str, row: Sequence[Any] | None) -> LockoutRecord:
    if row is None:
        return LockoutRecord(key)
    failures, lockouts, locked_until, updated_at, pending = row
    return LockoutRecord(
        key, int(failures), int(lockouts), float(locked_until), float(updated_at),
        decode_pending(pending),
    )  # fmt: skip


def encode_pending(pending: tuple[Pending, ...]) -> str:
    return ",".join(f"{p.id}@{p.until!r}" for p in pending)


def decode_pending(text: str) -> tuple[Pending, ...]:
    if not text:
        return ()
    found = []
    for item in text.split(","):
        attempt, until = item.split("@")
        found.append(Pending(attempt, float(until)))
    return tuple(found)


def encode_times(times: tuple[float, ...]) -> str:
    return ",".join(repr(t) for t in times)


def decode_times(text: str) -> tuple[float, ...]:
    return tuple(float(t) for t in text.split(",")) if text else ()


class Store(Protocol):
    # meta rows that ``open`` writes in the transaction that creates the tables, when the
    # database has none of them yet (set before ``open``)
    new_database_meta: Mapping[str, bytes]

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    # sessions and tokens

    async def start_session(self, token: TokenRecord) -> None:
        """A new session whose first token is ``token``."""
        ...

    async def get_token(self, token_hash: str) -> TokenRecord | None: ...

    async def get_token_and_seed(
        self, token_hash: str
    ) -> tuple[TokenRecord, SeedRecord | None] | None:
        """The token and, in the same query, the seed of its user (``user_dn``)."""
        ...

    async def replace_token(self, old_hash: str, new: TokenRecord) -> bool:
        """Revoke ``old_hash`` and insert ``new`` in one step; False if it was already revoked
        (spent by a concurrent request)."""
        ...

    async def add_token(self, new: TokenRecord) -> None:
        """Another token of an existing session (the old ones stay as they are)."""
        ...

    async def next_challenge_round(self, token_hash: str, sealed: str | None) -> int:
        """Keep ``sealed`` (the State of a new Challenge) with the token and count the round;
        returns how many Challenges this token has had, this one included (0: no such
        token)."""
        ...

    async def revoke_session(self, session_id: str) -> None: ...

    async def purge(self, now: float, idle_before: float) -> int:
        """Delete expired tokens, sessions and push results, and the lockout rows (holding no
        lock) and push windows last touched before ``idle_before``; in small batches, so
        requests are not held up. Returns how many rows went."""
        ...

    # seeds

    async def get_seed(self, dn: str) -> SeedRecord | None: ...

    async def any_seed(self) -> SeedRecord | None: ...

    async def insert_seed_if_absent(self, seed: SeedRecord) -> SeedRecord:
        """Return the seed that is stored after the call: ``seed``, or the one that was first."""
        ...

    async def use_seed_step(self, dn: str, step: int, secret_blob: bytes) -> bool:
        """Mark the seed verified and consume ``step``; False if that step (or a later one) was
        already used, which is the replay protection, or if the seed is no longer the one that
        was checked (``secret_blob``: deleted and enrolled again meanwhile)."""
        ...

    async def delete_seed(self, dn: str) -> bool: ...

    async def list_seeds(self) -> list[SeedRecord]: ...

    async def put_seed(self, seed: SeedRecord) -> None:
        """Store ``seed`` whether or not the user has one, replacing it and its replay state
        (the test control's known seeds; the login flow only ever inserts if absent)."""
        ...

    async def rotate_seeds(self, reencrypt: Reencrypt, key_check: bytes) -> int:
        """Re-encrypt every seed and store the new key's check value, in one transaction;
        sealed states kept with tokens are dropped (the old key made them)."""
        ...

    # the key check value and other single values

    async def get_meta(self, name: str) -> bytes | None: ...

    async def set_meta_if_absent(self, name: str, value: bytes) -> bytes:
        """Store ``value`` unless a value is there already; return the stored one."""
        ...

    # lockouts

    async def get_lockout(self, key: str) -> LockoutRecord: ...

    async def update_lockout(self, key: str, update: LockoutUpdate) -> LockoutRecord:
        """Apply ``update`` to the current record atomically and return the new record."""
        ...

    # pushes sent per account

    async def update_push_window(self, key: str, update: PushWindowUpdate) -> tuple[float, ...]:
        """Apply ``update`` to the times of the pushes sent for ``key`` atomically; return the
        new times."""
        ...

    # pushes in flight

    async def claim_push(
        self, token_hash: str, owner: str, now: float, deadline: float, answered_before: float
    ) -> PushClaim:
        """Become the owner of the push of ``token_hash``, unless another caller owns one
        whose deadline has not passed, or one that was answered at or after
        ``answered_before`` (a retry that close joins it): then its state."""
        ...

    async def finish_push(self, token_hash: str, owner: str, result: bytes, now: float) -> None:
        """The answer, written only while ``owner`` still owns the push."""
        ...

    # everything at once

    async def wipe(self) -> int:
        """Delete every session, token, seed, lockout, push and push window in one transaction,
        keeping the key check value (the test control's reset: as new, with the same key).
        Returns how many rows went."""
        ...
