"""The PostgreSQL store, for several server processes sharing state.

Everything two processes may race on is one statement or one transaction here: seed creation is
``INSERT .. ON CONFLICT DO NOTHING`` then a read (two first initializes get one secret), replay
protection is a conditional ``UPDATE`` (a code used on one process is refused on the other),
lockout counters are read ``FOR UPDATE`` and written in the same transaction, a token stage
change revokes the old token and inserts the new one atomically. Migrations run under an
advisory lock, so processes starting together do not trip over each other.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from server.store.base import (
    SEED_COLUMNS,
    TOKEN_COLUMNS,
    LockoutRecord,
    LockoutUpdate,
    SeedRecord,
    TokenRecord,
    pending_migrations,
    seed_from_row,
    token_from_row,
)

MIGRATION_LOCK = 0x6D66_6131  # any constant shared by every process of this server
MIGRATIONS: list[str] = [
    # 1: the first schema (the same tables as the SQLite store)
    """
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        provider TEXT NOT NULL,
        username TEXT NOT NULL,
        stage TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        revoked BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX tokens_session ON tokens(session_id);
    CREATE TABLE seeds (
        dn TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        username TEXT NOT NULL,
        secret_blob BYTEA NOT NULL,
        verified BOOLEAN NOT NULL DEFAULT FALSE,
        last_step BIGINT,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE lockouts (
        dn TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        lockouts INTEGER NOT NULL,
        locked_until DOUBLE PRECISION NOT NULL
    );
    """,
]


class PostgresStore:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._url = url
        self._pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]] | None = None
        self._min = min_size
        self._max = max_size

    @property
    def pool(self) -> AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]]:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def open(self) -> None:
        pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]] = AsyncConnectionPool(
            self._url, min_size=self._min, max_size=self._max, open=False,
            kwargs={"autocommit": True},
        )  # fmt: skip
        await pool.open(wait=True, timeout=30)
        self._pool = pool
        await self._migrate()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _migrate(self) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
            )
            cursor = await conn.execute("SELECT MAX(version) FROM schema_version")
            row = await cursor.fetchone()
            current = int(row[0] or 0) if row else 0
            for version, statements in pending_migrations(current, MIGRATIONS):
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    async def schema_version(self) -> int:
        async with self.pool.connection() as conn:
            cursor = await conn.execute("SELECT MAX(version) FROM schema_version")
            row = await cursor.fetchone()
        return int(row[0] or 0) if row else 0

    # tokens

    async def insert_token(self, token: TokenRecord) -> None:
        async with self.pool.connection() as conn:
            await self._insert_token(conn, token)

    @staticmethod
    async def _insert_token(conn: AsyncConnection[tuple[Any, ...]], token: TokenRecord) -> None:
        await conn.execute(
            "INSERT INTO tokens VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                token.token_hash, token.session_id, token.provider, token.username,
                token.stage.value, token.expires_at, token.revoked,
            ),
        )  # fmt: skip

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = %s",  # noqa: S608
                (token_hash,),
            )
            row = await cursor.fetchone()
        return None if row is None else token_from_row(row)

    async def replace_token(self, old_hash: str, new: TokenRecord) -> bool:
        async with self.pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "UPDATE tokens SET revoked = TRUE WHERE token_hash = %s AND NOT revoked",
                (old_hash,),
            )
            if cursor.rowcount != 1:
                return False
            await self._insert_token(conn, new)
        return True

    async def revoke_session(self, session_id: str) -> int:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE tokens SET revoked = TRUE WHERE session_id = %s AND NOT revoked",
                (session_id,),
            )
            return cursor.rowcount

    async def purge_tokens(self, now: float) -> int:
        async with self.pool.connection() as conn:
            cursor = await conn.execute("DELETE FROM tokens WHERE expires_at < %s", (now,))
            return cursor.rowcount

    # seeds

    async def get_seed(self, dn: str) -> SeedRecord | None:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {SEED_COLUMNS} FROM seeds WHERE dn = %s",  # noqa: S608
                (dn,),
            )
            row = await cursor.fetchone()
        return None if row is None else seed_from_row(row)

    async def insert_seed_if_absent(self, seed: SeedRecord) -> SeedRecord:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO seeds VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (dn) DO NOTHING",
                (
                    seed.dn, seed.provider, seed.username, seed.secret_blob, seed.verified,
                    seed.last_step, seed.created_at,
                ),
            )  # fmt: skip
            cursor = await conn.execute(
                f"SELECT {SEED_COLUMNS} FROM seeds WHERE dn = %s",  # noqa: S608
                (seed.dn,),
            )
            row = await cursor.fetchone()
        assert row is not None
        return seed_from_row(row)

    async def use_seed_step(self, dn: str, step: int) -> bool:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE seeds SET verified = TRUE, last_step = %s "
                "WHERE dn = %s AND (last_step IS NULL OR last_step < %s)",
                (step, dn, step),
            )
            return cursor.rowcount == 1

    async def delete_seed(self, dn: str) -> bool:
        async with self.pool.connection() as conn:
            cursor = await conn.execute("DELETE FROM seeds WHERE dn = %s", (dn,))
            return cursor.rowcount == 1

    async def list_seeds(self) -> list[SeedRecord]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {SEED_COLUMNS} FROM seeds ORDER BY dn"  # noqa: S608
            )
            rows = await cursor.fetchall()
        return [seed_from_row(row) for row in rows]

    # lockouts

    async def get_lockout(self, dn: str) -> LockoutRecord:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT failures, lockouts, locked_until FROM lockouts WHERE dn = %s", (dn,)
            )
            row = await cursor.fetchone()
        if row is None:
            return LockoutRecord(dn)
        return LockoutRecord(dn, int(row[0]), int(row[1]), float(row[2]))

    async def update_lockout(self, dn: str, update: LockoutUpdate) -> LockoutRecord:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO lockouts VALUES (%s, 0, 0, 0) ON CONFLICT (dn) DO NOTHING", (dn,)
            )
            cursor = await conn.execute(
                "SELECT failures, lockouts, locked_until FROM lockouts WHERE dn = %s FOR UPDATE",
                (dn,),
            )
            row = await cursor.fetchone()
            assert row is not None
            new = update(LockoutRecord(dn, int(row[0]), int(row[1]), float(row[2])))
            await conn.execute(
                "UPDATE lockouts SET failures = %s, lockouts = %s, locked_until = %s WHERE dn = %s",
                (new.failures, new.lockouts, new.locked_until, dn),
            )
        return new
