# -*- test-case-name: tests.test_mock_protocol -*-
"""RFC 5080 duplicate detection: a request with the same source address and port, identifier
and Request Authenticator as one seen within ``window`` seconds is a retransmission. A
retransmission of an answered request never reaches the script (so it cannot advance it or
mint a State); it gets the cached reply, or nothing while the reply is still delayed
(FreeRADIUS discards those too), so a client gets one answer per request however often it
retransmits. A drop loses one transmission only: a retransmission of a request the script
dropped reaches the script again, counted (``Entry.transmissions``), so "lose the first two
transmissions, then answer" can be scripted.

Bounded: answered entries expire ``window`` seconds after their answer, at most
``max_entries`` are kept (the oldest answered go first), and at most ``max_pending`` delayed
replies may wait at once. A delayed entry joins the expiry order only once answered, so it
never holds up the expiry of the others.
"""

from __future__ import annotations

from collections import deque
from enum import Enum

DEFAULT_WINDOW = 30.0
DEFAULT_MAX_ENTRIES = 32_768
DEFAULT_MAX_PENDING = 10_000


class Seen(Enum):
    PENDING = "pending"  # the reply is delayed
    ANSWERED = "answered"  # retransmissions get the cached reply
    IGNORED = "ignored"  # answered, but the step says onRetransmit: ignore
    LOST = "lost"  # the script dropped this transmission: the next one goes to the script
    DROPPED = "dropped"  # no reply, ever (a reply too long to send)


class Entry:
    __slots__ = ("expires", "key", "reply", "seen", "transmissions")

    def __init__(self, key: bytes, seen: Seen, reply: bytes | None = None) -> None:
        self.key = key
        self.seen = seen
        self.reply = reply  # what a retransmission gets (ANSWERED only)
        self.expires = 0.0
        self.transmissions = 1  # copies of the request seen (LOST: counted on)


def key_of(host: str, port: int, identifier: int, authenticator: bytes) -> bytes:
    return authenticator + bytes((identifier,)) + port.to_bytes(2, "big") + host.encode()


class DuplicateCache:
    def __init__(
        self,
        window: float = DEFAULT_WINDOW,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.window = window
        self.max_entries = max_entries
        self.max_pending = max_pending
        self._table: dict[bytes, Entry] = {}
        self._order: deque[Entry] = deque()  # answered, by expiry
        self.pending = 0

    def __len__(self) -> int:
        return len(self._table)

    def get(self, key: bytes, now: float) -> Entry | None:
        self._expire(now)
        return self._table.get(key)

    def start_pending(self, key: bytes, transmissions: int = 1) -> Entry | None:
        """An entry for a delayed reply, or None when too many are waiting already."""
        if self.pending >= self.max_pending:
            return None
        self.pending += 1
        entry = self._table[key] = Entry(key, Seen.PENDING)
        entry.transmissions = transmissions
        return entry

    def finish(self, entry: Entry, seen: Seen, reply: bytes | None, now: float) -> None:
        """Record how a delayed request was answered."""
        if entry.seen is Seen.PENDING:
            self.pending -= 1
        entry.seen, entry.reply = seen, reply
        if self._table.get(entry.key) is entry:  # else cleared meanwhile (POST /reset)
            self._queue(entry, now)

    def answered(
        self, key: bytes, seen: Seen, reply: bytes | None, now: float, transmissions: int = 1
    ) -> None:
        entry = self._table[key] = Entry(key, seen, reply)
        entry.transmissions = transmissions
        self._queue(entry, now)

    def clear(self) -> None:
        """Forget answered requests; delayed replies still pending keep their entries."""
        self._table = {k: e for k, e in self._table.items() if e.seen is Seen.PENDING}
        self._order.clear()

    def _queue(self, entry: Entry, now: float) -> None:
        entry.expires = now + self.window
        self._order.append(entry)
        order = self._order
        while len(self._table) > self.max_entries and order:
            self._forget(order.popleft())

    def _expire(self, now: float) -> None:
        order = self._order
        while order and order[0].expires <= now:
            self._forget(order.popleft())

    def _forget(self, entry: Entry) -> None:
        if self._table.get(entry.key) is entry:
            del self._table[entry.key]
