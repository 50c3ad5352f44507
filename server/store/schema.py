# -*- test-case-name: tests.test_store -*-
"""The tables, described once; each backend renders them in its own SQL dialect.

A new database is created from ``TABLES`` at ``SCHEMA_VERSION``. A database made by an older
server is brought up to date by the steps in ``UPGRADES`` (version -> steps), which are
described in the same terms. A test checks that both roads lead to the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dialect = Literal["sqlite", "postgres"]
ColumnType = Literal["text", "real", "integer", "bytes", "bool"]

_TYPES: dict[Dialect, dict[ColumnType, str]] = {
    "sqlite": {"text": "TEXT", "real": "REAL", "integer": "INTEGER", "bytes": "BLOB",
               "bool": "INTEGER"},
    "postgres": {"text": "TEXT", "real": "DOUBLE PRECISION", "integer": "BIGINT",
                 "bytes": "BYTEA", "bool": "BOOLEAN"},
}  # fmt: skip


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = False
    default: int | float | bool | str | None = None

    def sql(self, dialect: Dialect) -> str:
        parts = [self.name, _TYPES[dialect][self.type]]
        if not self.nullable:
            parts.append("NOT NULL")
        if self.default is not None:
            parts.append(f"DEFAULT {_literal(self.default, dialect)}")
        return " ".join(parts)


def _literal(value: int | float | bool | str, dialect: Dialect) -> str:
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE") if dialect == "postgres" else str(int(value))
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: str
    indexes: tuple[tuple[str, str], ...] = ()  # (index name, column)

    @property
    def column_names(self) -> str:
        """For ``SELECT <column_names>``: the order ``row_to_*`` decoders expect."""
        return ", ".join(c.name for c in self.columns)

    def create(self, dialect: Dialect) -> list[str]:
        columns = ", ".join(c.sql(dialect) for c in self.columns)
        statements = [f"CREATE TABLE {self.name} ({columns}, PRIMARY KEY ({self.key}))"]
        statements += [f"CREATE INDEX {name} ON {self.name}({col})" for name, col in self.indexes]
        return statements

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


SESSIONS = Table(
    "sessions",
    (
        Column("id", "text"),
        Column("provider", "text"),
        Column("username", "text"),
        Column("expires_at", "real"),  # the latest expiry of its tokens
        Column("revoked", "bool", default=False),
    ),
    key="id",
    indexes=(("sessions_expires", "expires_at"),),
)
TOKENS = Table(
    "tokens",
    (
        Column("token_hash", "text"),
        Column("session_id", "text"),
        Column("provider", "text"),
        Column("username", "text"),
        Column("stage", "text"),
        Column("expires_at", "real"),
        Column("revoked", "bool", default=False),
        Column("challenge_state", "text", nullable=True),  # the sealed State initialize issued
        Column("challenge_rounds", "integer", default=0),  # Challenges issued to this token
    ),
    key="token_hash",
    indexes=(("tokens_session", "session_id"), ("tokens_expires", "expires_at")),
)
SEEDS = Table(
    "seeds",
    (
        Column("dn", "text"),
        Column("provider", "text"),
        Column("username", "text"),
        Column("secret_blob", "bytes"),
        Column("verified", "bool", default=False),
        Column("last_step", "integer", nullable=True),
        Column("created_at", "real"),
    ),
    key="dn",
)
LOCKOUTS = Table(
    "lockouts",
    (
        Column("key", "text"),
        Column("failures", "integer"),
        Column("lockouts", "integer"),
        Column("locked_until", "real"),
        Column("updated_at", "real", default=0.0),
        # the attempts in flight, each with the end of its lease: "id@until,id@until"
        Column("pending", "text", default=""),
    ),
    key="key",
    indexes=(("lockouts_updated", "updated_at"),),
)
META = Table("meta", (Column("name", "text"), Column("value", "bytes")), key="name")
PUSHES = Table(
    "pushes",
    (
        Column("token_hash", "text"),
        Column("owner", "text"),  # who runs it: only the owner's answer is written
        Column("deadline", "real"),  # the owner answers by then, or another caller takes over
        Column("result", "bytes", nullable=True),  # sealed: it holds the new token
        Column("finished_at", "real", nullable=True),  # joiners read the answer shortly after
    ),
    key="token_hash",
    indexes=(("pushes_deadline", "deadline"),),
)

PUSH_WINDOWS = Table(
    "push_windows",
    (
        Column("key", "text"),
        Column("sent", "text", default=""),  # when each push of the window went: "t,t,t"
        Column("updated_at", "real", default=0.0),
    ),
    key="key",
    indexes=(("push_windows_updated", "updated_at"),),
)

TABLES = (SESSIONS, TOKENS, SEEDS, LOCKOUTS, META, PUSHES, PUSH_WINDOWS)


@dataclass(frozen=True)
class AddColumn:
    table: Table
    column: str

    def sql(self, dialect: Dialect) -> list[str]:
        column = self.table.column(self.column).sql(dialect)
        return [f"ALTER TABLE {self.table.name} ADD COLUMN {column}"]


@dataclass(frozen=True)
class RenameColumn:
    table: Table
    old: str
    new: str

    def sql(self, dialect: Dialect) -> list[str]:
        return [f"ALTER TABLE {self.table.name} RENAME COLUMN {self.old} TO {self.new}"]


@dataclass(frozen=True)
class CreateTable:
    table: Table

    def sql(self, dialect: Dialect) -> list[str]:
        return self.table.create(dialect)


@dataclass(frozen=True)
class CreateIndex:
    table: Table
    name: str

    def sql(self, dialect: Dialect) -> list[str]:
        column = dict(self.table.indexes)[self.name]
        return [f"CREATE INDEX {self.name} ON {self.table.name}({column})"]


@dataclass(frozen=True)
class Statement:
    """SQL that reads the same in both dialects (bool parameters are passed, not written)."""

    text: str

    def sql(self, dialect: Dialect) -> list[str]:
        return [self.text]


Step = AddColumn | RenameColumn | CreateTable | CreateIndex | Statement

# Version 1 (the first release) had tokens, seeds and lockouts(dn, ...).
UPGRADES: dict[int, list[Step]] = {
    2: [
        CreateTable(SESSIONS),
        # every session that has a token gets a row; one whose tokens are all revoked was
        # logged out
        Statement(
            "INSERT INTO sessions (id, provider, username, expires_at, revoked) "
            "SELECT session_id, MIN(provider), MIN(username), MAX(expires_at), "
            "MIN(CASE WHEN revoked THEN 1 ELSE 0 END) = 1 FROM tokens GROUP BY session_id"
        ),
        AddColumn(TOKENS, "challenge_state"),
        CreateIndex(TOKENS, "tokens_expires"),
        RenameColumn(LOCKOUTS, "dn", "key"),
        AddColumn(LOCKOUTS, "updated_at"),
        CreateIndex(LOCKOUTS, "lockouts_updated"),
        CreateTable(META),
        CreateTable(PUSHES),
    ],
    3: [
        AddColumn(TOKENS, "challenge_rounds"),
        AddColumn(LOCKOUTS, "pending"),
        CreateTable(PUSH_WINDOWS),
    ],
}
SCHEMA_VERSION = max(UPGRADES)


def plan(current: int, dialect: Dialect) -> list[tuple[int, list[str]]]:
    """(version, statements) that bring a database at ``current`` to ``SCHEMA_VERSION``: a
    new database (0) is created at once; a database newer than this server is refused."""
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {current} is newer than this server ({SCHEMA_VERSION})"
        )
    if current == 0:
        return [(SCHEMA_VERSION, [s for t in TABLES for s in t.create(dialect)])]
    return [
        (version, [s for step in UPGRADES[version] for s in step.sql(dialect)])
        for version in range(current + 1, SCHEMA_VERSION + 1)
    ]
