# -*- test-case-name: tests.test_test_control_units -*-
"""Test control needs a database of its own, and keeps it to itself.

Through /_test/ anyone can place a known seed, move the clock (a token minted ten years ahead
stays valid wherever the real time is) and wipe every seed and token. On a database that
servers without test control share, all of that would reach them. So a server with test
control marks the database it creates (a meta row, written with the tables in one
transaction, only when the database has none of this server's tables yet) and refuses any
other database; a server without test control refuses a database that carries the mark.
"""

from __future__ import annotations

from appgate_mfa_server.config import Settings
from appgate_mfa_server.keys import shown_url
from appgate_mfa_server.store.base import TEST_CONTROL_MARK, Store

MARK_VALUE = b"made by a server with test control"


class NotItsDatabase(Exception):
    """The database belongs to the other kind of server; the message is for the operator."""


def claim_if_new(store: Store, settings: Settings) -> None:
    """Before ``store.open()``: with test control, a database created now is marked its own."""
    if settings.server.test_control.enabled:
        store.new_database_meta = {TEST_CONTROL_MARK: MARK_VALUE}


async def check(store: Store, settings: Settings) -> None:
    """After ``store.open()``: raise NotItsDatabase unless the database fits this server."""
    marked = await store.get_meta(TEST_CONTROL_MARK) is not None
    shown = shown_url(settings.storage.url)
    if settings.server.test_control.enabled and not marked:
        raise NotItsDatabase(
            f"test control needs a database of its own, and {shown} was not created by a "
            "server with test control: through /_test/ its seeds, tokens and lockouts could be "
            "replaced or wiped. Point storage.url at a new database (for SQLite, a file that "
            "does not exist yet; for the demo, another --data-dir)."
        )
    if marked and not settings.server.test_control.enabled:
        raise NotItsDatabase(
            f"{shown} was created by a server with test control, whose seeds, tokens and "
            "clock /_test/ could set: a server without test control does not use it. Point "
            "storage.url at another database (for the demo, another --data-dir), or start "
            "this one with test control."
        )
