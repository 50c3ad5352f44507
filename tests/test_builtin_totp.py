"""The built-in TOTP provider on its own, over a real SQLite store: the races the HTTP tests
cannot time (a seed verified between the token's read and the insert) and the enrolment flag."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from appgate_mfa_server.config import DefaultTimeBasedProvider
from appgate_mfa_server.mfa import totp
from appgate_mfa_server.mfa.base import Accepted, Initialized
from appgate_mfa_server.mfa.builtin import BuiltinTotp
from appgate_mfa_server.seedcrypt import SeedCipher
from appgate_mfa_server.store import open_store
from appgate_mfa_server.store.base import SeedRecord, Store
from appgate_mfa_server.users import UserInfo

NOW = 1_800_000_000.0
ALICE = UserInfo(provider="local", username="alice", admin=True, mfa_provider="builtin")
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _with_provider(
    tmp_path: Path, body: Callable[[BuiltinTotp, Store, SeedCipher], Awaitable[None]]
) -> None:
    async def run() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'mfa.db'}")
        await store.open()
        cipher = SeedCipher(secrets.token_bytes(32))
        provider = BuiltinTotp(
            DefaultTimeBasedProvider(name="builtin", type="DefaultTimeBased"),
            store=store,
            cipher=cipher,
            clock=lambda: NOW,
            hostname="controller.test",
            issuer="Appgate SDP",
        )
        try:
            await body(provider, store, cipher)
        finally:
            await store.close()

    asyncio.run(run())


def _seed(cipher: SeedCipher, *, verified: bool) -> SeedRecord:
    return SeedRecord(
        dn=ALICE.dn,
        provider=ALICE.provider,
        username=ALICE.username,
        secret_blob=cipher.encrypt(ALICE.dn, SECRET),
        verified=verified,
        last_step=None,
        created_at=NOW - 100,
    )


def _code_now() -> str:
    return totp.code_at(SECRET, NOW)


def test_a_seed_verified_since_the_token_was_read_is_never_shown_again(tmp_path: Path) -> None:
    """The token said "no seed", but another request enrolled and verified one meanwhile."""

    async def body(provider: BuiltinTotp, store: Store, cipher: SeedCipher) -> None:
        await store.insert_seed_if_absent(_seed(cipher, verified=True))
        outcome = await provider.initialize(ALICE, None, None)
        assert outcome == Initialized({"type": "AlreadySeeded"})

    _with_provider(tmp_path, body)


def test_an_unverified_seed_is_shown_again_unchanged(tmp_path: Path) -> None:
    async def body(provider: BuiltinTotp, store: Store, cipher: SeedCipher) -> None:
        await store.insert_seed_if_absent(_seed(cipher, verified=False))
        outcome = await provider.initialize(ALICE, None, None)
        assert isinstance(outcome, Initialized)
        assert outcome.body["type"] == "Secret"
        assert outcome.body["secret"] == SECRET

    _with_provider(tmp_path, body)


def test_the_first_good_code_enrols_and_later_ones_do_not(tmp_path: Path) -> None:
    async def body(provider: BuiltinTotp, store: Store, cipher: SeedCipher) -> None:
        unverified = _seed(cipher, verified=False)
        await store.insert_seed_if_absent(unverified)
        first = await provider.verify(ALICE, _code_now(), None, unverified)
        assert first == Accepted({"enrolled": True})

        verified = replace(unverified, verified=True)
        next_code = totp.code_at(SECRET, NOW + 30)
        later = await provider.verify(ALICE, next_code, None, verified)
        assert later == Accepted({"enrolled": False})

    _with_provider(tmp_path, body)
