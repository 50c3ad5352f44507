"""The store interface, the same tests against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from server.store import open_store
from server.store.base import LockoutRecord, SeedRecord, Stage, Store, TokenRecord
from server.store.postgres import MIGRATIONS as PG_MIGRATIONS
from server.store.sqlite import MIGRATIONS as SQLITE_MIGRATIONS

Factory = Callable[[], Awaitable[Store]]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def stores(store_url: str) -> Any:
    """Open as many stores on the same database as a test wants (several processes' worth)."""

    opened: list[Store] = []

    async def make() -> Store:
        store = open_store(store_url)
        await store.open()
        opened.append(store)
        return store

    async def close_all() -> None:
        for store in opened:
            await store.close()

    return make, close_all


def run(stores: Any, test: Callable[[Factory], Awaitable[None]]) -> None:
    make, close_all = stores

    async def body() -> None:
        try:
            await test(make)
        finally:
            await close_all()

    asyncio.run(body())


def token(name: str, session: str = "s1", stage: Stage = Stage.PARTIAL) -> TokenRecord:
    return TokenRecord(name, session, "local", "alice", stage, 1000.0)


def seed(blob: bytes = b"blob") -> SeedRecord:
    return SeedRecord("CN=alice,OU=local", "local", "alice", blob, False, None, 5.0)


def test_tokens(stores: Any) -> None:
    async def test(make: Factory) -> None:
        store = await make()
        await store.insert_token(token("a"))
        assert await store.get_token("a") == token("a")
        assert await store.get_token("missing") is None
        assert await store.replace_token("a", token("b", stage=Stage.MFA))
        assert not await store.replace_token("a", token("c", stage=Stage.MFA))  # spent
        assert (await store.get_token("a")).revoked  # type: ignore[union-attr]
        assert await store.get_token("c") is None
        await store.insert_token(token("other", session="s2"))
        assert await store.revoke_session("s1") == 1  # b; a was already revoked
        assert not (await store.get_token("other")).revoked  # type: ignore[union-attr]
        await store.insert_token(replace(token("old", session="s3"), expires_at=10.0))
        assert await store.purge_tokens(11.0) == 1
        assert await store.get_token("old") is None

    run(stores, test)


def test_a_token_is_replaced_once_under_concurrency(stores: Any) -> None:
    async def test(make: Factory) -> None:
        first, second = await make(), await make()
        await first.insert_token(token("t"))
        results = await asyncio.gather(
            *(s.replace_token("t", token(f"n{i}", stage=Stage.MFA))
              for i, s in enumerate([first, second] * 5))
        )  # fmt: skip
        assert results.count(True) == 1

    run(stores, test)


def test_one_seed_wins_concurrent_first_initializes(stores: Any) -> None:
    async def test(make: Factory) -> None:
        first, second = await make(), await make()
        results = await asyncio.gather(
            *(s.insert_seed_if_absent(seed(f"blob{i}".encode()))
              for i, s in enumerate([first, second] * 10))
        )  # fmt: skip
        assert len({r.secret_blob for r in results}) == 1
        assert await first.list_seeds() == [results[0]]

    run(stores, test)


def test_replay_protection_steps_only_move_forward(stores: Any) -> None:
    async def test(make: Factory) -> None:
        first, second = await make(), await make()
        await first.insert_seed_if_absent(seed())
        dn = seed().dn
        assert await first.use_seed_step(dn, 10)
        assert not await second.use_seed_step(dn, 10)  # the same code on another process
        assert not await first.use_seed_step(dn, 9)
        stored = await second.get_seed(dn)
        assert stored is not None and stored.verified and stored.last_step == 10
        results = await asyncio.gather(*(s.use_seed_step(dn, 11) for s in [first, second] * 4))
        assert results.count(True) == 1
        assert await first.delete_seed(dn)
        assert not await second.delete_seed(dn)
        assert await second.get_seed(dn) is None

    run(stores, test)


def test_lockout_updates_add_up_across_stores(stores: Any) -> None:
    async def test(make: Factory) -> None:
        first, second = await make(), await make()
        dn = "CN=alice,OU=local"
        assert await first.get_lockout(dn) == LockoutRecord(dn)

        def bump(record: LockoutRecord) -> LockoutRecord:
            return replace(record, failures=record.failures + 1)

        await asyncio.gather(*(s.update_lockout(dn, bump) for s in [first, second] * 10))
        assert (await second.get_lockout(dn)).failures == 20

    run(stores, test)


def test_migrations_are_versioned_and_idempotent(stores: Any) -> None:
    async def test(make: Factory) -> None:
        stores_ = await asyncio.gather(*(make() for _ in range(4)))  # processes starting at once
        expected = len(SQLITE_MIGRATIONS)
        assert expected == len(PG_MIGRATIONS)
        for store in stores_:
            assert await store.schema_version() == expected  # type: ignore[attr-defined]
        again = await make()
        assert await again.schema_version() == expected  # type: ignore[attr-defined]

    run(stores, test)


def test_a_newer_database_is_refused(stores: Any, store_url: str) -> None:
    async def test(make: Factory) -> None:
        store = await make()
        if store_url.startswith("sqlite"):
            store.db.execute("INSERT INTO schema_version VALUES (99)")  # type: ignore[attr-defined]
        else:
            async with store.pool.connection() as conn:  # type: ignore[attr-defined]
                await conn.execute("INSERT INTO schema_version VALUES (99)")
        with pytest.raises(RuntimeError, match="schema version 99 is newer"):
            await make()

    run(stores, test)


def test_an_older_database_is_upgraded(store_url: str) -> None:
    """A database at version 0 (only schema_version) is brought to the current version."""

    async def body() -> None:
        if store_url.startswith("sqlite"):
            import sqlite3

            with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
                db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        else:
            import psycopg

            async with await psycopg.AsyncConnection.connect(store_url, autocommit=True) as conn:
                await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        store = open_store(store_url)
        await store.open()
        try:
            assert await store.schema_version() == len(SQLITE_MIGRATIONS)  # type: ignore[attr-defined]
            await store.insert_token(token("works"))
            assert await store.get_token("works") is not None
        finally:
            await store.close()

    asyncio.run(body())
