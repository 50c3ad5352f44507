# -*- test-case-name: tests.test_test_control, tests.test_test_control_units -*-
"""The state of the test double: its clock, faults and journal, and the store and seed key it
reaches once the application has started."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from appgate_mfa_server import errors
from appgate_mfa_server.config import Settings
from appgate_mfa_server.seedcrypt import SeedCipher
from appgate_mfa_server.store.base import Store
from appgate_mfa_server.testcontrol.clock import VirtualClock
from appgate_mfa_server.testcontrol.faults import FaultBook
from appgate_mfa_server.testcontrol.journal import Journal
from appgate_mfa_server.testcontrol.origins import HostRule
from appgate_mfa_server.testcontrol.seeds import SeedPlacer, SeedRequest

log = logging.getLogger("mfa.testcontrol")


class TestControl:
    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, settings: Settings, real_clock: Callable[[], float]) -> None:
        server = settings.server
        self.clock = VirtualClock(real_clock)
        self.faults = FaultBook()
        self.versions = (server.api_versions.min, server.api_versions.max)
        self.journal = Journal(self.versions)
        self.body_limit = server.max_body_bytes
        self.body_timeout = server.request_timeout
        options = server.test_control
        self.hosts = HostRule(allow_remote=options.allow_remote, names=options.allowed_hosts)
        self._seeds = SeedPlacer(settings)
        self._store: Store | None = None
        self._cipher: SeedCipher | None = None

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float]) -> TestControl | None:
        """The test control when ``server.testControl`` is on, else None."""
        return cls(settings, clock) if settings.server.test_control.enabled else None

    def bind(self, store: Store, key: bytes) -> None:
        """Called by the lifespan once the store is open and the seed key checked."""
        self._store = store
        self._cipher = SeedCipher(key)

    def _ready(self) -> tuple[Store, SeedCipher]:
        if self._store is None or self._cipher is None:
            raise errors.unavailable()
        return self._store, self._cipher

    async def put_seed(self, dn: str, request: SeedRequest) -> dict[str, Any]:
        store, cipher = self._ready()
        seed = self._seeds.record(dn, request, cipher, self.clock())
        await store.put_seed(seed)
        event("seed_placed", dn=dn, verified=seed.verified)
        return {"userDistinguishedName": dn, "username": seed.username,
                "providerName": seed.provider, "verified": seed.verified}  # fmt: skip

    async def reset(self) -> None:
        """As freshly started: no sessions, tokens, seeds, lockouts, faults or journal, and
        the real time."""
        store, _ = self._ready()
        rows = await store.wipe()
        self.faults.clear()
        self.clock.set(None)
        self.journal.clear()
        event("reset", rows=rows)


def event(name: str, **fields: Any) -> None:
    """A log line for what a test did to the server (never a secret)."""
    log.info(name, extra={"fields": {"event": f"test_{name}", **fields}})
