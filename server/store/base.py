"""What the server keeps, and the operations on it that must be atomic.

Every operation that two requests (or two processes) may race on is one method here, so each
backend can make it atomic its own way.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class Stage(enum.StrEnum):
    PARTIAL = "partial"
    MFA = "mfa"
    FULL = "full"


@dataclass(frozen=True)
class TokenRecord:
    token_hash: str
    session_id: str
    provider: str
    username: str
    stage: Stage
    expires_at: float
    revoked: bool = False


@dataclass(frozen=True)
class SeedRecord:
    dn: str
    provider: str
    username: str
    secret_blob: bytes
    verified: bool
    last_step: int | None
    created_at: float


@dataclass(frozen=True)
class LockoutRecord:
    dn: str
    failures: int = 0
    lockouts: int = 0
    locked_until: float = 0.0


LockoutUpdate = Callable[[LockoutRecord], LockoutRecord]

# What every backend shares: the column order its queries select, how a row becomes a record,
# and which migrations are still to apply.
TOKEN_COLUMNS = "token_hash, session_id, provider, username, stage, expires_at, revoked"  # noqa: S105
SEED_COLUMNS = "dn, provider, username, secret_blob, verified, last_step, created_at"


def token_from_row(row: Sequence[Any]) -> TokenRecord:
    token_hash, session_id, provider, username, stage, expires_at, revoked = row
    return TokenRecord(
        token_hash, session_id, provider, username, Stage(stage), float(expires_at), bool(revoked)
    )


def seed_from_row(row: Sequence[Any]) -> SeedRecord:
    dn, provider, username, blob, verified, last_step, created_at = row
    return SeedRecord(
        dn, provider, username, bytes(blob), bool(verified),
        None if last_step is None else int(last_step), float(created_at),
    )  # fmt: skip


def pending_migrations(current: int, migrations: list[str]) -> list[tuple[int, list[str]]]:
    """(version, statements) still to apply to a database at ``current``; a database newer
    than this server is refused rather than written to."""
    if current > len(migrations):
        raise RuntimeError(
            f"database schema version {current} is newer than this server ({len(migrations)})"
        )
    return [
        (version, [part for part in migrations[version - 1].split(";") if part.strip()])
        for version in range(current + 1, len(migrations) + 1)
    ]


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def insert_token(self, token: TokenRecord) -> None: ...

    async def get_token(self, token_hash: str) -> TokenRecord | None: ...

    async def replace_token(self, old_hash: str, new: TokenRecord) -> bool:
        """Revoke ``old_hash`` and insert ``new`` in one step; False if it was already revoked."""
        ...

    async def revoke_session(self, session_id: str) -> int: ...

    async def purge_tokens(self, now: float) -> int: ...

    async def get_seed(self, dn: str) -> SeedRecord | None: ...

    async def insert_seed_if_absent(self, seed: SeedRecord) -> SeedRecord:
        """Return the seed that is stored after the call: ``seed``, or the one that was first."""
        ...

    async def use_seed_step(self, dn: str, step: int) -> bool:
        """Mark the seed verified and consume ``step``; False if that step (or a later one) was
        already used, which is the replay protection."""
        ...

    async def delete_seed(self, dn: str) -> bool: ...

    async def list_seeds(self) -> list[SeedRecord]: ...

    async def get_lockout(self, dn: str) -> LockoutRecord: ...

    async def update_lockout(self, dn: str, update: LockoutUpdate) -> LockoutRecord:
        """Apply ``update`` to the current record atomically and return the new record."""
        ...
