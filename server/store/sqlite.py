"""The embedded default store: one SQLite file in WAL mode.

Queries run on the event loop thread: each is a few microseconds against a local file in WAL
mode with ``synchronous=NORMAL``, cheaper than a hop to a worker thread. Writes that read first
run inside ``BEGIN IMMEDIATE`` so that two processes sharing the file stay consistent; the
PostgreSQL store is the backend meant for several processes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        provider TEXT NOT NULL,
        username TEXT NOT NULL,
        stage TEXT NOT NULL,
        expires_at REAL NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tokens_session ON tokens(session_id);
    CREATE TABLE seeds (
        dn TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        username TEXT NOT NULL,
        secret_blob BLOB NOT NULL,
        verified INTEGER NOT NULL DEFAULT 0,
        last_step INTEGER,
        created_at REAL NOT NULL
    );
    CREATE TABLE lockouts (
        dn TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        lockouts INTEGER NOT NULL,
        locked_until REAL NOT NULL
    );
    """,
]


class SqliteStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None

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
        db.execute("PRAGMA foreign_keys = ON")
        self._db = db
        self._migrate()

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            for version, statements in pending_migrations(row[0] or 0, MIGRATIONS):
                for statement in statements:
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    async def schema_version(self) -> int:
        row = self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    # tokens

    async def insert_token(self, token: TokenRecord) -> None:
        self.db.execute(
            "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                token.token_hash,
                token.session_id,
                token.provider,
                token.username,
                token.stage.value,
                token.expires_at,
                int(token.revoked),
            ),
        )

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        row = self.db.execute(
            f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?",  # noqa: S608
            (token_hash,),
        ).fetchone()
        return None if row is None else token_from_row(row)

    async def replace_token(self, old_hash: str, new: TokenRecord) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE tokens SET revoked = 1 WHERE token_hash = ? AND revoked = 0", (old_hash,)
            )
            if cursor.rowcount != 1:
                return False
            await self.insert_token(new)
        return True

    async def revoke_session(self, session_id: str) -> int:
        cursor = self.db.execute(
            "UPDATE tokens SET revoked = 1 WHERE session_id = ? AND revoked = 0", (session_id,)
        )
        return cursor.rowcount

    async def purge_tokens(self, now: float) -> int:
        cursor = self.db.execute("DELETE FROM tokens WHERE expires_at < ?", (now,))
        return cursor.rowcount

    # seeds

    async def get_seed(self, dn: str) -> SeedRecord | None:
        row = self.db.execute(
            f"SELECT {SEED_COLUMNS} FROM seeds WHERE dn = ?",  # noqa: S608
            (dn,),
        ).fetchone()
        return None if row is None else seed_from_row(row)

    async def insert_seed_if_absent(self, seed: SeedRecord) -> SeedRecord:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO seeds VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    seed.dn,
                    seed.provider,
                    seed.username,
                    seed.secret_blob,
                    int(seed.verified),
                    seed.last_step,
                    seed.created_at,
                ),
            )
            row = db.execute(
                f"SELECT {SEED_COLUMNS} FROM seeds WHERE dn = ?",  # noqa: S608
                (seed.dn,),
            ).fetchone()
        return seed_from_row(row)

    async def use_seed_step(self, dn: str, step: int) -> bool:
        cursor = self.db.execute(
            "UPDATE seeds SET verified = 1, last_step = ? "
            "WHERE dn = ? AND (last_step IS NULL OR last_step < ?)",
            (step, dn, step),
        )
        return cursor.rowcount == 1

    async def delete_seed(self, dn: str) -> bool:
        return self.db.execute("DELETE FROM seeds WHERE dn = ?", (dn,)).rowcount == 1

    async def list_seeds(self) -> list[SeedRecord]:
        rows = self.db.execute(
            f"SELECT {SEED_COLUMNS} FROM seeds ORDER BY dn"  # noqa: S608
        ).fetchall()
        return [seed_from_row(row) for row in rows]

    # lockouts

    def _read_lockout(self, db: sqlite3.Connection, dn: str) -> LockoutRecord:
        row = db.execute(
            "SELECT failures, lockouts, locked_until FROM lockouts WHERE dn = ?", (dn,)
        ).fetchone()
        if row is None:
            return LockoutRecord(dn)
        return LockoutRecord(dn, int(row[0]), int(row[1]), float(row[2]))

    async def get_lockout(self, dn: str) -> LockoutRecord:
        return self._read_lockout(self.db, dn)

    async def update_lockout(self, dn: str, update: LockoutUpdate) -> LockoutRecord:
        with self._transaction() as db:
            new = update(self._read_lockout(db, dn))
            db.execute(
                "INSERT INTO lockouts VALUES (?, ?, ?, ?) ON CONFLICT(dn) DO UPDATE SET "
                "failures = excluded.failures, lockouts = excluded.lockouts, "
                "locked_until = excluded.locked_until",
                (dn, new.failures, new.lockouts, new.locked_until),
            )
        return new
