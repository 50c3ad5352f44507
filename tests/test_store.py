"""The store interface, the same tests against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from appgate_mfa_server.store import open_store
from appgate_mfa_server.store.base import (
    KEY_CHECK,
    LockoutRecord,
    Pending,
    SeedRecord,
    Stage,
    Store,
    TokenRecord,
)
from appgate_mfa_server.store.schema import SCHEMA_VERSION, TABLES

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
        await store.start_session(token("a"))
        assert await store.get_token("a") == token("a")
        assert await store.get_token("missing") is None
        assert await store.replace_token("a", token("b", stage=Stage.MFA))
        assert await store.get_token("b") == token("b", stage=Stage.MFA)
        assert not await store.replace_token("a", token("c", stage=Stage.MFA))  # spent
        assert (await store.get_token("a")).revoked  # type: ignore[union-attr]
        assert await store.get_token("c") is None
        await store.start_session(token("other", session="s2"))
        await store.revoke_session("s1")
        assert (await store.get_token("b")).revoked  # type: ignore[union-attr]
        assert not (await store.get_token("other")).revoked  # type: ignore[union-attr]
        # a token that joins a revoked session (issued by a racing request) is dead too
        await store.replace_token("b", token("late", stage=Stage.FULL))
        assert (await store.get_token("late")).revoked  # type: ignore[union-attr]
        assert await store.next_challenge_round("other", "sealed") == 1
        assert await store.next_challenge_round("other", "sealed-2") == 2
        other = await store.get_token("other")
        assert other is not None and (other.challenge_state, other.challenge_rounds) == (
            "sealed-2",
            2,
        )
        assert await store.next_challenge_round("nobody", "sealed") == 0
        await store.start_session(replace(token("old", session="s3"), expires_at=10.0))
        assert await store.purge(11.0, 0.0) == 2  # the token and its session
        assert await store.get_token("old") is None
        assert await store.get_token("other") is not None

    run(stores, test)


def test_a_token_issued_while_its_session_is_logged_out_is_dead(stores: Any) -> None:
    async def test(make: Factory) -> None:
        first, second = await make(), await make()
        for round_ in range(20):
            session = f"race{round_}"
            await first.start_session(token(f"p{round_}", session=session))
            await asyncio.gather(
                first.replace_token(f"p{round_}", token(f"f{round_}", session, Stage.FULL)),
                second.revoke_session(session),
            )
            for name in (f"p{round_}", f"f{round_}"):
                found = await second.get_token(name)
                assert found is None or found.revoked

    run(stores, test)


def test_token_and_seed_in_one_query(stores: Any) -> None:
    async def test(make: Factory) -> None:
        store = await make()
        await store.start_session(token("t"))
        assert await store.get_token_and_seed("t") == (token("t"), None)
        stored = await store.insert_seed_if_absent(seed())
        assert await store.get_token_and_seed("t") == (token("t"), stored)
        assert await store.get_token_and_seed("missing") is None

    run(stores, test)


def test_push_claims(stores: Any) -> None:
    async def test(make: Factory) -> None:
        first, second = await make(), await make()

        async def claim(store: Store, key: str, owner: str, now: float) -> Any:
            return await store.claim_push(key, owner, now, now + 10.0, now - 2.0)

        claims = await asyncio.gather(
            *(claim(s, "t", f"o{i}", 0.0) for i, s in enumerate([first, second] * 4))
        )
        assert [c.owner for c in claims].count(True) == 1
        owner = f"o{[c.owner for c in claims].index(True)}"
        assert (await claim(second, "t", "x", 5.0)).result is None  # still waiting
        await first.finish_push("t", "someone else", b"not theirs", 6.0)  # not the owner: no
        assert (await claim(second, "t", "x", 6.0)).result is None
        await first.finish_push("t", owner, b"answer", 6.0)
        assert (await claim(second, "t", "x", 7.0)).result == b"answer"  # a retry close by
        # a retry well after the answer starts a new push (a denial is not final)
        assert (await claim(second, "t", "y", 8.5)).owner
        # an owner that never answered is taken over once its deadline has passed
        assert (await claim(first, "u", "a", 0.0)).owner
        assert not (await claim(second, "u", "b", 9.0)).owner
        assert (await claim(second, "u", "b", 11.0)).owner
        await first.finish_push("u", "a", b"late", 12.0)  # the dead owner's late answer: dropped
        assert (await claim(first, "u", "c", 12.5)).result is None
        assert await first.purge(200.0, 0.0) == 2

    run(stores, test)


def test_key_check_value_and_rotation(stores: Any) -> None:
    async def test(make: Factory) -> None:
        store = await make()
        assert await store.get_meta(KEY_CHECK) is None
        assert await store.set_meta_if_absent(KEY_CHECK, b"one") == b"one"
        assert await store.set_meta_if_absent(KEY_CHECK, b"two") == b"one"
        await store.insert_seed_if_absent(seed(b"old"))
        await store.start_session(token("t"))
        await store.next_challenge_round("t", "sealed-with-old")
        assert (await store.claim_push("p", "owner", 0.0, 10.0, -2.0)).owner
        assert (await store.get_token("t")).challenge_state == "sealed-with-old"  # type: ignore[union-attr]
        count = await store.rotate_seeds(lambda s: s.secret_blob + b"+new", b"two")
        assert count == 1
        assert (await store.get_seed(seed().dn)).secret_blob == b"old+new"  # type: ignore[union-attr]
        assert await store.get_meta(KEY_CHECK) == b"two"
        assert (await store.get_token("t")).challenge_state is None  # type: ignore[union-attr]
        # answers sealed with the old key are gone: the push is anybody's to claim again
        assert (await store.claim_push("p", "other", 0.0, 10.0, -2.0)).owner

    run(stores, test)


def test_a_token_is_replaced_once_under_concurrency(stores: Any) -> None:
    async def test(make: Factory) -> None:
        first, second = await make(), await make()
        await first.start_session(token("t"))
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
        dn, blob = seed().dn, seed().secret_blob
        assert await first.use_seed_step(dn, 10, blob)
        assert not await second.use_seed_step(dn, 10, blob)  # the same code on another process
        assert not await first.use_seed_step(dn, 9, blob)
        stored = await second.get_seed(dn)
        assert stored is not None and stored.verified and stored.last_step == 10
        results = await asyncio.gather(
            *(s.use_seed_step(dn, 11, blob) for s in [first, second] * 4)
        )
        assert results.count(True) == 1
        # the seed was deleted and enrolled again since the code was checked: not this one
        assert not await first.use_seed_step(dn, 12, b"another seed's blob")
        assert await first.delete_seed(dn)
        assert not await second.delete_seed(dn)
        assert await second.get_seed(dn) is None

    run(stores, test)


def test_lockout_updates_add_up_across_stores(stores: Any) -> None:
    async def test(make: Factory) -> None:
        first, second = await make(), await make()
        key = "CN=alice,OU=local"
        assert await first.get_lockout(key) == LockoutRecord(key)

        def bump(record: LockoutRecord) -> LockoutRecord:
            return replace(record, failures=record.failures + 1, updated_at=5.0)

        await asyncio.gather(*(s.update_lockout(key, bump) for s in [first, second] * 10))
        assert (await second.get_lockout(key)).failures == 20
        # rows that hold no lock and sat idle are purged; a held lock is kept
        await first.update_lockout("locked", lambda r: replace(r, locked_until=100.0))
        assert await first.purge(50.0, idle_before=10.0) == 1
        assert await first.get_lockout(key) == LockoutRecord(key)
        assert (await first.get_lockout("locked")).locked_until == 100.0

    run(stores, test)


def test_put_seed_replaces_a_seed_and_its_replay_state(stores: Any) -> None:
    async def test(make: Factory) -> None:
        first, second = await make(), await make()
        dn = seed().dn
        await first.put_seed(seed(b"known"))  # no seed yet: inserted
        assert await second.get_seed(dn) == seed(b"known")
        assert await first.use_seed_step(dn, 10, b"known")
        placed = replace(seed(b"other"), verified=True, created_at=7.0)
        await second.put_seed(placed)  # replaced, verified flag and last step included
        assert await first.get_seed(dn) == placed
        assert await first.use_seed_step(dn, 3, b"other")  # the replay state went with the old seed
        assert (await first.insert_seed_if_absent(seed(b"late"))).secret_blob == b"other"

    run(stores, test)


def test_wipe_empties_every_table_but_the_key_check(stores: Any) -> None:
    async def test(make: Factory) -> None:
        store = await make()
        await store.set_meta_if_absent(KEY_CHECK, b"check")
        await store.start_session(token("t"))
        await store.insert_seed_if_absent(seed())
        await store.update_lockout("k", lambda r: replace(r, failures=1))
        await store.claim_push("t", "o", 0.0, 10.0, -2.0)
        await store.update_push_window("k", lambda sent: (*sent, 1.0))
        assert await store.wipe() == 6  # session, token, seed, lockout, push, push window
        assert await store.get_token("t") is None
        assert await store.list_seeds() == []
        assert await store.get_lockout("k") == LockoutRecord("k")
        assert (await store.claim_push("t", "o", 0.0, 10.0, -2.0)).owner
        assert await store.get_meta(KEY_CHECK) == b"check"
        assert await store.schema_version() == SCHEMA_VERSION
        assert await store.wipe() == 1  # the push claimed just now

    run(stores, test)


def test_meta_rows_for_a_new_database_are_written_only_where_the_tables_are_made(
    store_url: str,
) -> None:
    """A store that creates the tables writes ``new_database_meta`` with them (and a reset
    keeps them); one that finds the tables there writes nothing."""

    async def test() -> None:
        first = open_store(store_url)
        first.new_database_meta = {"mark": b"1", "other": b"2"}
        await first.open()
        assert (await first.get_meta("mark"), await first.get_meta("other")) == (b"1", b"2")
        assert await first.wipe() == 0
        assert await first.get_meta("mark") == b"1"
        await first.close()
        later = open_store(store_url)
        later.new_database_meta = {"late": b"3"}
        await later.open()
        assert await later.get_meta("late") is None  # the tables were there already
        await later.close()

    asyncio.run(test())


def test_migrations_are_versioned_and_idempotent(stores: Any) -> None:
    async def test(make: Factory) -> None:
        stores_ = await asyncio.gather(*(make() for _ in range(4)))  # processes starting at once
        for store in stores_:
            assert await store.schema_version() == SCHEMA_VERSION
        again = await make()
        assert await again.schema_version() == SCHEMA_VERSION

    run(stores, test)


def test_a_newer_database_is_refused(stores: Any, store_url: str) -> None:
    async def test(make: Factory) -> None:
        await make()
        await _execute(store_url, "INSERT INTO schema_version VALUES (99)")
        with pytest.raises(RuntimeError, match="schema version 99 is newer"):
            await make()

    run(stores, test)


async def _execute(url: str, *statements: str) -> None:
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            for statement in statements:
                db.execute(statement)
    else:
        import psycopg

        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for statement in statements:
                await conn.execute(statement)


async def _columns(url: str) -> dict[str, list[str]]:
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return {
                t.name: sorted(r[1] for r in db.execute(f"PRAGMA table_info({t.name})"))
                for t in TABLES
            }
    import psycopg

    async with await psycopg.AsyncConnection.connect(url) as conn:
        found: dict[str, list[str]] = {}
        for table in TABLES:
            cursor = await conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                (table.name,),
            )
            found[table.name] = sorted(r[0] for r in await cursor.fetchall())
        return found


# The first release's schema (version 1), as it created it.
VERSION_1 = [
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version VALUES (1)",
    "CREATE TABLE tokens (token_hash TEXT PRIMARY KEY, session_id TEXT NOT NULL, provider TEXT "
    "NOT NULL, username TEXT NOT NULL, stage TEXT NOT NULL, expires_at REAL NOT NULL, revoked "
    "{bool} NOT NULL DEFAULT {false})",
    "CREATE INDEX tokens_session ON tokens(session_id)",
    "CREATE TABLE seeds (dn TEXT PRIMARY KEY, provider TEXT NOT NULL, username TEXT NOT NULL, "
    "secret_blob {bytes} NOT NULL, verified {bool} NOT NULL DEFAULT {false}, last_step BIGINT, "
    "created_at REAL NOT NULL)",
    "CREATE TABLE lockouts (dn TEXT PRIMARY KEY, failures INTEGER NOT NULL, lockouts INTEGER "
    "NOT NULL, locked_until REAL NOT NULL)",
    "INSERT INTO tokens VALUES ('live', 's1', 'local', 'alice', 'full', 1000, {false})",
    "INSERT INTO tokens VALUES ('gone', 's2', 'local', 'alice', 'full', 1000, {true})",
    "INSERT INTO lockouts VALUES ('CN=alice,OU=local', 3, 1, 0)",
]


def test_a_version_1_database_is_upgraded_with_its_data(store_url: str, tmp_path: Path) -> None:
    sqlite = store_url.startswith("sqlite")
    words = {"bool": "INTEGER" if sqlite else "BOOLEAN", "false": "0" if sqlite else "FALSE",
             "true": "1" if sqlite else "TRUE", "bytes": "BLOB" if sqlite else "BYTEA"}  # fmt: skip

    async def body() -> None:
        await _execute(store_url, *(s.format(**words) for s in VERSION_1))
        store = open_store(store_url)
        await store.open()
        try:
            assert await store.schema_version() == SCHEMA_VERSION
            live = await store.get_token("live")
            assert live is not None and not live.revoked and live.stage == Stage.FULL
            gone = await store.get_token("gone")
            assert gone is not None and gone.revoked  # its session counts as logged out
            lockout = await store.get_lockout("CN=alice,OU=local")
            assert (lockout.failures, lockout.lockouts, lockout.pending) == (3, 1, ())
            assert live.challenge_rounds == 0
        finally:
            await store.close()
        # the same columns as a database made new at today's version (from TABLES)
        upgraded = await _columns(store_url)
        assert upgraded == {t.name: sorted(c.name for c in t.columns) for t in TABLES}
        fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
        fresh = open_store(fresh_url)
        await fresh.open()
        await fresh.close()
        assert await _columns(fresh_url) == upgraded

    asyncio.run(body())


def _bump_many(path: str, key: str, times: int, start: Any) -> None:
    """In a process of its own: ``times`` read-modify-writes of one lockout row."""

    async def body() -> None:
        store = open_store(f"sqlite:///{path}")
        await store.open()
        start.wait()
        for _ in range(times):
            await store.update_lockout(key, lambda r: replace(r, failures=r.failures + 1))
        await store.close()

    asyncio.run(body())


@pytest.mark.slow
def test_sqlite_read_modify_writes_add_up_across_processes(tmp_path: Path) -> None:
    """Two real processes on one SQLite file: no update is lost (BEGIN IMMEDIATE)."""
    import multiprocessing

    path = str(tmp_path / "shared.db")
    asyncio.run(_open_and_close(f"sqlite:///{path}"))
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_bump_many, args=(path, "k", 2500, start)) for _ in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0

    async def count() -> int:
        store = open_store(f"sqlite:///{path}")
        await store.open()
        try:
            return (await store.get_lockout("k")).failures
        finally:
            await store.close()

    assert asyncio.run(count()) == 10_000


async def _open_and_close(url: str) -> None:
    store = open_store(url)
    await store.open()
    await store.close()


def test_sqlite_checkpoints_in_the_background(tmp_path: Path, monkeypatch: Any) -> None:
    """Automatic checkpoints (an fsync inside some commit, on the event loop) are off; the
    store's own task copies the write-ahead log into the database file from a worker thread."""
    import time

    from appgate_mfa_server.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY_SECONDS", 0.02)
    database = tmp_path / "wal.db"

    async def body() -> None:
        store = open_store(f"sqlite:///{database}")
        await store.open()
        db = store.db  # type: ignore[attr-defined]
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        empty = database.stat().st_size
        for i in range(300):
            await store.start_session(token(f"t{i}", session=f"s{i}"))
        deadline = time.monotonic() + 10
        while database.stat().st_size <= empty:  # the pages reach the file, or it is a bug
            assert time.monotonic() < deadline, "no checkpoint ran"
            await asyncio.sleep(0.02)
        await store.close()

    asyncio.run(body())


def test_a_sqlite_file_in_a_folder_not_yet_made_is_created(tmp_path: Path) -> None:
    """A fresh data directory: the store makes the folders its file lives in."""
    database = tmp_path / "data" / "nested" / "mfa.db"

    async def body() -> None:
        store = open_store(f"sqlite:///{database}")
        await store.open()
        await store.close()

    asyncio.run(body())
    assert database.is_file()


def test_closing_a_sqlite_store_checkpoints_and_stops_its_checkpointer(tmp_path: Path) -> None:
    """A closed store leaves a database file that holds everything (an empty write-ahead log)
    and no task of its own behind."""
    database = tmp_path / "mfa.db"

    async def body() -> None:
        store = open_store(f"sqlite:///{database}")
        await store.open()
        await store.update_lockout("k", lambda r: replace(r, failures=r.failures + 1))
        wal = Path(f"{database}-wal")
        assert wal.stat().st_size > 0
        await store.close()
        assert not wal.exists() or wal.stat().st_size == 0
        await asyncio.sleep(0)  # let a cancelled task finish
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(body())


def test_the_constraints_of_a_new_database_are_pinned(tmp_path: Path) -> None:
    """Written out by hand, not derived from the schema module: a change here needs an
    upgrade step for the databases that exist already."""
    import sqlite3

    database = tmp_path / "mfa.db"
    asyncio.run(_open_and_close(f"sqlite:///{database}"))
    with contextlib.closing(sqlite3.connect(database)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        columns = [
            (table, *row) for table in tables for row in db.execute(f"PRAGMA table_info({table})")
        ]
    nullable = {(table, name) for table, _, name, _, notnull, _, _ in columns if not notnull}
    defaults = {(table, name): default for table, _, name, _, _, default, _ in columns if default}
    assert nullable == {("tokens", "challenge_state"), ("seeds", "last_step"),
                        ("pushes", "result"), ("pushes", "finished_at")}  # fmt: skip
    assert defaults == {("sessions", "revoked"): "0", ("tokens", "revoked"): "0",
                        ("tokens", "challenge_rounds"): "0", ("seeds", "verified"): "0",
                        ("lockouts", "updated_at"): "0.0", ("lockouts", "pending"): "''",
                        ("push_windows", "sent"): "''",
                        ("push_windows", "updated_at"): "0.0"}  # fmt: skip


def test_a_closed_postgresql_store_has_closed_its_pool(postgres_url: str) -> None:
    """A server that stops hands its connections back to PostgreSQL at once."""
    from appgate_mfa_server.store.postgres import PostgresStore

    async def body() -> None:
        store = open_store(postgres_url)
        assert isinstance(store, PostgresStore)
        await store.open()
        pool = store.pool
        await store.close()
        assert pool.closed
        with pytest.raises(RuntimeError, match="not open"):
            _ = store.pool

    asyncio.run(body())


def test_an_added_token_lives_and_keeps_its_session_alive(stores: Any) -> None:
    """A session lasts as long as its latest token: the purge must not take a live token's
    session (nor the token) because the session's first token has expired."""

    async def test(make: Factory) -> None:
        store = await make()
        await store.start_session(replace(token("first"), expires_at=10.0))
        later = replace(token("added", stage=Stage.FULL), expires_at=100.0)
        await store.add_token(later)
        assert await store.get_token("added") == later
        replaced = replace(token("replaced", stage=Stage.FULL), expires_at=200.0)
        assert await store.replace_token("added", replaced)
        assert await store.purge(150.0, 0.0) == 2  # "first" and "added", not the session
        assert await store.get_token("replaced") == replaced
        assert await store.purge(250.0, 0.0) == 2  # now the last token and its session

    run(stores, test)


def test_any_seed_and_the_record_update_lockout_wrote(stores: Any) -> None:
    async def test(make: Factory) -> None:
        store = await make()
        assert await store.any_seed() is None
        await store.insert_seed_if_absent(seed())
        assert await store.any_seed() == seed()
        written = await store.update_lockout("k", lambda r: replace(r, failures=3))
        assert written == LockoutRecord("k", failures=3)
        assert await store.get_lockout("k") == written

    run(stores, test)


def test_attempts_in_flight_are_kept_with_the_lockout(stores: Any) -> None:
    """What the guard writes (the leases of attempts in flight) reads back exactly, on both
    backends and across two stores."""

    async def test(make: Factory) -> None:
        first, second = await make(), await make()
        pending = (Pending("a1", 100.25), Pending("b2", 1e9 + 0.1))
        written = await first.update_lockout("k", lambda r: replace(r, failures=1, pending=pending))
        assert written.pending == pending
        assert await second.get_lockout("k") == written
        await second.update_lockout("k", lambda r: replace(r, pending=r.pending[1:]))
        assert (await first.get_lockout("k")).pending == pending[1:]

    run(stores, test)


def test_push_windows_add_up_across_stores_and_are_purged_when_idle(stores: Any) -> None:
    async def test(make: Factory) -> None:
        first, second = await make(), await make()
        assert await first.update_push_window("CN=p,OU=x", lambda sent: sent) == ()
        await asyncio.gather(
            *(s.update_push_window("CN=p,OU=x", lambda sent: (*sent, float(len(sent) + 1)))
              for s in [first, second] * 5)
        )  # fmt: skip
        assert await second.update_push_window("CN=p,OU=x", lambda sent: sent) == tuple(
            float(n) for n in range(1, 11)
        )
        assert await first.purge(100.0, idle_before=10.0) == 0  # the last push was at 10.0
        assert await first.purge(100.0, idle_before=10.1) == 1
        assert await second.update_push_window("CN=p,OU=x", lambda sent: sent) == ()

    run(stores, test)


def test_a_push_answer_is_purged_a_minute_after_its_deadline(stores: Any) -> None:
    async def test(make: Factory) -> None:
        store = await make()
        assert (await store.claim_push("t", "owner", 0.0, 10.0, -2.0)).owner
        assert await store.purge(69.9, 0.0) == 0
        assert await store.purge(70.1, 0.0) == 1

    run(stores, test)


def test_a_purge_deletes_a_backlog_in_batches_to_the_last_row(stores: Any) -> None:
    async def test(make: Factory) -> None:
        store = await make()
        store.purge_batch = 2  # type: ignore[attr-defined]
        for n in range(4):
            await store.start_session(replace(token(f"t{n}", session=f"s{n}"), expires_at=1.0))
        assert await store.purge(2.0, 0.0) == 8  # 4 tokens, 4 sessions: two full batches each
        assert [await store.get_token(f"t{n}") for n in range(4)] == [None] * 4

    run(stores, test)
