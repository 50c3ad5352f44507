# -*- test-case-name: tests.test_store -*-
"""The embedded default store: one SQLite file in WAL mode.

Queries run on the event loop thread: each is a few microseconds against a local file, cheaper
than a hop to a worker thread, and none of them awaits in the middle, so within one process a
transaction is never interleaved with another request. Transactions begin with ``BEGIN
IMMEDIATE``, which takes the file's write lock, so several processes sharing the file (the
``workers`` setting) stay consistent too.

The one slow thing SQLite does is a checkpoint (copying the write-ahead log into the database,
with an fsync): left automatic, it runs inside whichever commit crosses the threshold and held
the event loop for hundreds of milliseconds on this project's machines. So automatic
checkpoints are off, and a background task runs them in a thread, on a connection of its own,
once a second when something was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from appgate_mfa_server.store.schema import Dialect
from appgate_mfa_server.store.sql import Row, SqlStore


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


CHECKPOINT_EVERY_SECONDS = 1.0
WAL_SIZE_LIMIT = 16 * 1024 * 1024  # the log file is cut back to this after a checkpoint


class SqliteStore(SqlStore):
    dialect: Dialect = "sqlite"
    purge_batch = 100  # on the event loop: small statements

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._conn: _Connection | None = None
        self._checkpointer: asyncio.Task[None] | None = None

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
        if self._path != ":memory:":
            db.execute("PRAGMA wal_autocheckpoint = 0")
            db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            self._checkpointer = asyncio.create_task(self._checkpoint_forever())

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            self._checkpointer = None
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None
            self._conn = None

    async def _checkpoint_forever(self) -> None:
        wal = Path(self._path + "-wal")
        done_at = 0.0
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_SECONDS)
            try:
                written_at = wal.stat().st_mtime
                if written_at == done_at:
                    continue
                await asyncio.to_thread(self._checkpoint)
                done_at = written_at
            except (OSError, sqlite3.Error):  # no log yet, or busy: the next round tries again
                continue

    def _checkpoint(self) -> None:
        """In a worker thread, on a connection of its own (a connection is not shared)."""
        with contextlib.closing(sqlite3.connect(self._path, timeout=5)) as db:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")

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
