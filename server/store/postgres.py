# -*- test-case-name: tests.test_store, tests.test_multiprocess, tests.test_shared_accounts -*-
"""The PostgreSQL store, for several server processes sharing state (psycopg 3, a pool).

Read-modify-writes lock their row (``SELECT .. FOR UPDATE``) inside a transaction; migrations
run under an advisory lock, so processes starting together do not trip over each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from appgate_mfa_server.store.schema import Dialect
from appgate_mfa_server.store.sql import Connection, Row, SqlStore

MIGRATION_LOCK = 0x6D66_6131  # any constant shared by every process of this server
Pool = AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]]


@cache
def _dialect(sql: str) -> str:
    """The shared SQL with psycopg's placeholders."""
    return sql.replace("?", "%s")


class _Connection:
    def __init__(self, conn: AsyncConnection[tuple[Any, ...]]) -> None:
        self._conn = conn

    async def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        cursor = await self._conn.execute(_dialect(sql), params)
        return await cursor.fetchone()

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = await self._conn.execute(_dialect(sql), params)
        return list(await cursor.fetchall())

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self._conn.execute(_dialect(sql), params)
        return cursor.rowcount


class PostgresStore(SqlStore):
    dialect: Dialect = "postgres"
    for_update = " FOR UPDATE"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._url = url
        self._pool: Pool | None = None
        self._min = min_size
        self._max = max_size

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def open(self) -> None:
        pool: Pool = AsyncConnectionPool(
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

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Connection]:
        async with self.pool.connection() as conn:
            yield _Connection(conn)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Connection]:
        async with self.pool.connection() as conn, conn.transaction():
            yield _Connection(conn)

    async def _lock_migrations(self, conn: Connection) -> None:
        await conn.run("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
