"""The embedded default store: one SQLite file in WAL mode.

Queries run on the event loop thread: each is a few microseconds against a local file, cheaper
than a hop to a worker thread, and none of them awaits in the middle, so within one process a
transaction is never interleaved with another request. Transactions begin with ``BEGIN
IMMEDIATE``, which takes the file's write lock, so several processes sharing the file (the
``workers`` setting) stay consistent too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from server.store.schema import Dialect
from server.store.sql import Row, SqlStore


class _Connection:
    """The one connection, also its own (free) async context manager: on the event loop no
    other coroutine runs between two of its statements."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    async def __aenter__(self) -> _Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self._db.execute(sql, params).fetchone()
        return row

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._db.execute(sql, params).fetchall()

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._db.execute(sql, params).rowcount


class SqliteStore(SqlStore):
    dialect: Dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._conn: _Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def open(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        self._db = db
        self._conn = _Connection(db)
        await self._migrate()

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
            self._conn = None

    def _connection(self) -> _Connection:
        if self._conn is None:
            raise RuntimeError("store is not open")
        return self._conn

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Connection]:
        db = self.db
        assert self._conn is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
