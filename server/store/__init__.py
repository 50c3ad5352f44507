# -*- test-case-name: tests.test_store -*-
"""Storage backends behind one protocol; ``open_store`` picks one from ``storage.url``."""

from __future__ import annotations

from appgate_mfa_server.store.base import LockoutRecord, SeedRecord, Stage, Store, TokenRecord
from appgate_mfa_server.store.sqlite import SqliteStore


def open_store(url: str) -> Store:
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from appgate_mfa_server.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(f"unsupported storage url scheme: {url.split(':', 1)[0]}")


__all__ = ["LockoutRecord", "SeedRecord", "Stage", "Store", "TokenRecord", "open_store"]
