# -*- test-case-name: tests.test_store -*-
"""The store's logic, written once in the SQL both backends speak; each backend supplies only
its connection handling (``SqlStore._transaction`` and ``_connection``).

Queries use ``?`` placeholders (the PostgreSQL backend rewrites them) and pass booleans as
parameters, so the text is the same for both dialects. What two requests or two processes may
race on is one statement or one transaction: a conditional UPDATE, an INSERT .. ON CONFLICT, or
a read-modify-write under the backend's write lock (``FOR UPDATE`` on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from types import MappingProxyType
from typing import Any, Protocol

from appgate_mfa_server.store.base import (
    KEY_CHECK,
    LOCKOUT_COLUMNS,
    SEED_COLUMNS,
    TOKEN_COLUMNS,
    USER_DN_SQL,
    LockoutRecord,
    LockoutUpdate,
    PushClaim,
    PushWindowUpdate,
    Reencrypt,
    SeedRecord,
    TokenRecord,
    decode_times,
    encode_pending,
    encode_times,
    lockout_from_row,
    seed_from_row,
    token_from_row,
)
from appgate_mfa_server.store.schema import META, SEEDS, SESSIONS, TABLES, TOKENS, Dialect, plan

PURGE_SHARE = 0.2  # of the time, at most, that a purge holds the database (SQLite: the loop)
PUSH_RESULT_GRACE = 60.0  # a push's answer stays readable this long after its deadline
Row = Sequence[Any]

_TOKEN_SELECT = (
    f"SELECT {TOKEN_COLUMNS}, (t.revoked OR s.revoked) "  # noqa: S608 - constant text
    "FROM tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = ?"
)
_TOKEN_AND_SEED_SELECT = (
    f"SELECT {TOKEN_COLUMNS}, (t.revoked OR s.revoked), "  # noqa: S608 - constant text
    + ", ".join(f"d.{c}" for c in SEED_COLUMNS.split(", "))
    + f" FROM tokens t JOIN sessions s ON s.id = t.session_id "
    f"LEFT JOIN seeds d ON d.dn = {USER_DN_SQL} WHERE t.token_hash = ?"
)
_TOKEN_WIDTH = len(TOKEN_COLUMNS.split(", ")) + 1
_SELECT_LOCKOUT = f"SELECT {LOCKOUT_COLUMNS} FROM lockouts WHERE key = ?"  # noqa: S608
_NEW_LOCKOUT = (
    "INSERT INTO lockouts (key, failures, lockouts, locked_until, updated_at, pending) "
    "VALUES (?, 0, 0, 0, 0, '') ON CONFLICT (key) DO NOTHING"
)
_SELECT_PUSH_WINDOW = "SELECT sent FROM push_windows WHERE key = ?"
_NEW_PUSH_WINDOW = (
    "INSERT INTO push_windows (key, sent, updated_at) VALUES (?, '', 0) "
    "ON CONFLICT (key) DO NOTHING"
)
_INSERT_TOKEN = (
    f"INSERT INTO tokens ({TOKENS.column_names}) "  # noqa: S608 - constant text
    f"VALUES ({', '.join('?' * len(TOKENS.columns))})"
)
_PUT_SEED = (
    f"INSERT INTO seeds ({SEED_COLUMNS}) VALUES ({', '.join('?' * len(SEEDS.columns))}) "  # noqa: S608
    "ON CONFLICT (dn) DO UPDATE SET "
    + ", ".join(f"{c.name} = excluded.{c.name}" for c in SEEDS.columns if c.name != "dn")
)
_INSERT_SESSION = (
    f"INSERT INTO sessions ({SESSIONS.column_names}) "  # noqa: S608 - constant text
    f"VALUES ({', '.join('?' * len(SESSIONS.columns))})"
)


class Connection(Protocol):
    """One connection, inside or outside a transaction."""

    async def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; the number of rows changed."""
        ...


def _token_params(token: TokenRecord) -> tuple[Any, ...]:
    return (
        token.token_hash, token.session_id, token.provider, token.username, token.stage.value,
        token.expires_at, token.revoked, token.challenge_state, token.challenge_rounds,
    )  # fmt: skip


class SqlStore:
    dialect: Dialect
    for_update = ""  # the row lock a read-modify-write takes, where the dialect has one
    purge_batch = 500  # rows a purge deletes in one statement
    new_database_meta: Mapping[str, bytes] = MappingProxyType({})

    # what a backend provides

    def _transaction(self) -> AbstractAsyncContextManager[Connection]:
        """A connection in a transaction that holds the write lock for what it touches."""
        raise NotImplementedError

    def _connection(self) -> AbstractAsyncContextManager[Connection]:
        """A connection in autocommit mode."""
        raise NotImplementedError

    async def _lock_migrations(self, conn: Connection) -> None:
        """Keep other processes out while this one migrates (inside the transaction)."""

    # schema

    async def _migrate(self) -> None:
        async with self._transaction() as conn:
            await self._lock_migrations(conn)
            await conn.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = await conn.one("SELECT MAX(version) FROM schema_version")
            current = int(row[0] or 0) if row else 0
            for version, statements in plan(current, self.dialect):
                for statement in statements:
                    await conn.run(statement)
                await conn.run("INSERT INTO schema_version (version) VALUES (?)", (version,))
            if current == 0:  # the tables were made just now, in this transaction
                for name, value in self.new_database_meta.items():
                    await conn.run("INSERT INTO meta (name, value) VALUES (?, ?)", (name, value))

    async def schema_version(self) -> int:
        async with self._connection() as conn:
            row = await conn.one("SELECT MAX(version) FROM schema_version")
        return int(row[0] or 0) if row else 0

    # sessions and tokens

    async def start_session(self, token: TokenRecord) -> None:
        async with self._transaction() as conn:
            await conn.run(
                _INSERT_SESSION,
                (token.session_id, token.provider, token.username, token.expires_at, False),
            )
            await conn.run(_INSERT_TOKEN, _token_params(token))

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        async with self._connection() as conn:
            row = await conn.one(_TOKEN_SELECT, (token_hash,))
        return None if row is None else token_from_row(row)

    async def get_token_and_seed(
        self, token_hash: str
    ) -> tuple[TokenRecord, SeedRecord | None] | None:
        async with self._connection() as conn:
            row = await conn.one(_TOKEN_AND_SEED_SELECT, (token_hash,))
        if row is None:
            return None
        seed_row = row[_TOKEN_WIDTH:]
        seed = None if seed_row[0] is None else seed_from_row(seed_row)
        return token_from_row(row[:_TOKEN_WIDTH]), seed

    async def replace_token(self, old_hash: str, new: TokenRecord) -> bool:
        async with self._transaction() as conn:
            spent = await conn.run(
                "UPDATE tokens SET revoked = ? WHERE token_hash = ? AND revoked = ?",
                (True, old_hash, False),
            )
            if spent != 1:
                return False
            await self._add_token(conn, new)
        return True

    async def add_token(self, new: TokenRecord) -> None:
        async with self._transaction() as conn:
            await self._add_token(conn, new)

    @staticmethod
    async def _add_token(conn: Connection, new: TokenRecord) -> None:
        await conn.run(_INSERT_TOKEN, _token_params(new))
        await conn.run(
            "UPDATE sessions SET expires_at = "
            "CASE WHEN expires_at < ? THEN ? ELSE expires_at END WHERE id = ?",
            (new.expires_at, new.expires_at, new.session_id),
        )

    async def next_challenge_round(self, token_hash: str, sealed: str | None) -> int:
        async with self._transaction() as conn:
            await conn.run(
                "UPDATE tokens SET challenge_state = ?, challenge_rounds = challenge_rounds + 1 "
                "WHERE token_hash = ?",
                (sealed, token_hash),
            )
            row = await conn.one(
                "SELECT challenge_rounds FROM tokens WHERE token_hash = ?", (token_hash,)
            )
        return 0 if row is None else int(row[0])

    async def revoke_session(self, session_id: str) -> None:
        async with self._connection() as conn:
            await conn.run("UPDATE sessions SET revoked = ? WHERE id = ?", (True, session_id))

    async def purge(self, now: float, idle_before: float) -> int:
        purges = [
            ("tokens", "token_hash", "expires_at < ?", (now,)),
            ("sessions", "id", "expires_at < ?", (now,)),
            ("pushes", "token_hash", "deadline < ?", (now - PUSH_RESULT_GRACE,)),
            ("lockouts", "key", "locked_until < ? AND updated_at < ?", (now, idle_before)),
            ("push_windows", "key", "updated_at < ?", (idle_before,)),
        ]
        total = 0
        batch = self.purge_batch
        for table, key, condition, params in purges:
            while True:
                started = time.monotonic()
                async with self._connection() as conn:
                    gone = await conn.run(
                        f"DELETE FROM {table} WHERE {key} IN "  # noqa: S608 - constant names
                        f"(SELECT {key} FROM {table} WHERE {condition} LIMIT {batch})",
                        params,
                    )
                total += gone
                if gone < batch:
                    break
                # a pause in proportion, so requests get most of the time while a big
                # backlog (a million expired tokens) is deleted
                spent = time.monotonic() - started
                await asyncio.sleep(spent * (1 - PURGE_SHARE) / PURGE_SHARE)
        return total

    # seeds

    async def get_seed(self, dn: str) -> SeedRecord | None:
        async with self._connection() as conn:
            row = await conn.one(f"SELECT {SEED_COLUMNS} FROM seeds WHERE dn = ?", (dn,))  # noqa: S608
        return None if row is None else seed_from_row(row)

    async def any_seed(self) -> SeedRecord | None:
        async with self._connection() as conn:
            row = await conn.one(f"SELECT {SEED_COLUMNS} FROM seeds LIMIT 1")  # noqa: S608
        return None if row is None else seed_from_row(row)

    async def insert_seed_if_absent(self, seed: SeedRecord) -> SeedRecord:
        async with self._transaction() as conn:
            await conn.run(
                f"INSERT INTO seeds ({SEED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "  # noqa: S608
                "ON CONFLICT (dn) DO NOTHING",
                (
                    seed.dn, seed.provider, seed.username, seed.secret_blob, seed.verified,
                    seed.last_step, seed.created_at,
                ),
            )  # fmt: skip
            row = await conn.one(f"SELECT {SEED_COLUMNS} FROM seeds WHERE dn = ?", (seed.dn,))  # noqa: S608
        assert row is not None
        return seed_from_row(row)

    async def use_seed_step(self, dn: str, step: int, secret_blob: bytes) -> bool:
        async with self._connection() as conn:
            changed = await conn.run(
                "UPDATE seeds SET verified = ?, last_step = ? "
                "WHERE dn = ? AND secret_blob = ? AND (last_step IS NULL OR last_step < ?)",
                (True, step, dn, secret_blob, step),
            )
        return changed == 1

    async def delete_seed(self, dn: str) -> bool:
        async with self._connection() as conn:
            return await conn.run("DELETE FROM seeds WHERE dn = ?", (dn,)) == 1

    async def list_seeds(self) -> list[SeedRecord]:
        async with self._connection() as conn:
            rows = await conn.all(f"SELECT {SEED_COLUMNS} FROM seeds ORDER BY dn")  # noqa: S608
        return [seed_from_row(row) for row in rows]

    async def put_seed(self, seed: SeedRecord) -> None:
        async with self._connection() as conn:
            await conn.run(
                _PUT_SEED,
                (
                    seed.dn, seed.provider, seed.username, seed.secret_blob, seed.verified,
                    seed.last_step, seed.created_at,
                ),
            )  # fmt: skip

    async def rotate_seeds(self, reencrypt: Reencrypt, key_check: bytes) -> int:
        async with self._transaction() as conn:
            rows = await conn.all(f"SELECT {SEED_COLUMNS} FROM seeds{self.for_update}")  # noqa: S608
            for row in rows:
                seed = seed_from_row(row)
                await conn.run(
                    "UPDATE seeds SET secret_blob = ? WHERE dn = ?", (reencrypt(seed), seed.dn)
                )
            await conn.run(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (KEY_CHECK, key_check),
            )
            await conn.run("UPDATE tokens SET challenge_state = NULL")
            await conn.run("DELETE FROM pushes")
        return len(rows)

    # single values

    async def get_meta(self, name: str) -> bytes | None:
        async with self._connection() as conn:
            row = await conn.one("SELECT value FROM meta WHERE name = ?", (name,))
        return None if row is None else bytes(row[0])

    async def set_meta_if_absent(self, name: str, value: bytes) -> bytes:
        async with self._transaction() as conn:
            await conn.run(
                "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (name, value),
            )
            row = await conn.one("SELECT value FROM meta WHERE name = ?", (name,))
        assert row is not None
        return bytes(row[0])

    # lockouts

    async def get_lockout(self, key: str) -> LockoutRecord:
        async with self._connection() as conn:
            row = await conn.one(_SELECT_LOCKOUT, (key,))
        return lockout_from_row(key, row)

    async def _locked_row(self, conn: Connection, select: str, insert: str, key: str) -> Row:
        """The row of ``key``, locked for this transaction where the dialect locks rows;
        made by ``insert`` (which must do nothing on a conflict) on the first touch, so that
        there is something to lock."""
        query = select + self.for_update
        row = await conn.one(query, (key,))
        if row is None:
            await conn.run(insert, (key,))
            row = await conn.one(query, (key,))
        assert row is not None  # made in this transaction, or by another that committed first
        return row

    async def update_lockout(self, key: str, update: LockoutUpdate) -> LockoutRecord:
        async with self._transaction() as conn:
            row = await self._locked_row(conn, _SELECT_LOCKOUT, _NEW_LOCKOUT, key)
            current = lockout_from_row(key, row)
            new = update(current)
            if new != current:
                await conn.run(
                    "UPDATE lockouts SET failures = ?, lockouts = ?, locked_until = ?, "
                    "updated_at = ?, pending = ? WHERE key = ?",
                    (new.failures, new.lockouts, new.locked_until, new.updated_at,
                     encode_pending(new.pending), key),
                )  # fmt: skip
        return new

    # pushes sent per account

    async def update_push_window(self, key: str, update: PushWindowUpdate) -> tuple[float, ...]:
        async with self._transaction() as conn:
            row = await self._locked_row(conn, _SELECT_PUSH_WINDOW, _NEW_PUSH_WINDOW, key)
            current = decode_times(row[0])
            new = update(current)
            if new != current:
                await conn.run(
                    "UPDATE push_windows SET sent = ?, updated_at = ? WHERE key = ?",
                    (encode_times(new), max(new, default=0.0), key),
                )
        return new

    # pushes in flight

    async def claim_push(
        self, token_hash: str, owner: str, now: float, deadline: float, answered_before: float
    ) -> PushClaim:
        async with self._transaction() as conn:
            claimed = await conn.run(
                "INSERT INTO pushes (token_hash, owner, deadline, result, finished_at) "
                "VALUES (?, ?, ?, NULL, NULL) "
                "ON CONFLICT (token_hash) DO UPDATE SET owner = excluded.owner, "
                "deadline = excluded.deadline, result = NULL, finished_at = NULL "
                "WHERE (pushes.result IS NULL AND pushes.deadline < ?) "
                "OR (pushes.result IS NOT NULL AND pushes.finished_at < ?)",
                (token_hash, owner, deadline, now, answered_before),
            )
            if claimed == 1:
                return PushClaim(owner=True)
            row = await conn.one("SELECT result FROM pushes WHERE token_hash = ?", (token_hash,))
        result = None if row is None or row[0] is None else bytes(row[0])
        return PushClaim(owner=False, result=result)

    async def finish_push(self, token_hash: str, owner: str, result: bytes, now: float) -> None:
        async with self._connection() as conn:
            await conn.run(
                "UPDATE pushes SET result = ?, finished_at = ? WHERE token_hash = ? AND owner = ?",
                (result, now, token_hash, owner),
            )

    # everything at once

    async def wipe(self) -> int:
        async with self._transaction() as conn:
            gone = [
                await conn.run(f"DELETE FROM {table.name}")  # noqa: S608 - constant names
                for table in TABLES
                if table is not META
            ]
        return sum(gone)
