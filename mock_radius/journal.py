# -*- test-case-name: tests.test_mock_units, tests.test_mock_control -*-
"""The request journal: what came in and what was done with it, for tests to assert on.

Bounded in bytes: the oldest entries go once the estimate passes ``max_bytes``. An entry
keeps references (the request and reply octets, the step's name), not decoded attributes;
``render`` decodes them when somebody reads the journal, so journaling costs a packet almost
nothing. Requests dropped before a scenario looked at them keep only a summary (code,
identifier, length, user, why), so junk cannot fill memory however large it is.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from mock_radius.engine import Decision
from mock_radius.outcome import Outcome
from mock_radius.rendering import reply_fields, request_fields
from radius_codec.authenticators import MaStatus
from radius_codec.codes import code_label

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
# what an entry costs besides its octets and strings (object, floats, source tuple, deque
# slot), measured with tracemalloc on CPython 3.11 and rounded up
ENTRY_OVERHEAD = 480
MAX_SUMMARY_TEXT = 253
ADDED, SENT = "entry", "sent"  # what listeners hear: an entry added, a delayed reply sent


def _value(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


class Entry:
    """One datagram and what was done with it; references, decoded only by ``render``."""

    __slots__ = (
        "code",
        "decision",
        "error",
        "id",
        "length",
        "message_authenticator",
        "outcome",
        "replies",
        "reply",
        "request",
        "scenario",
        "sent",
        "seq",
        "size",
        "source",
        "time",
        "transmission",
        "user",
    )

    def __init__(
        self,
        time: float,
        source: tuple[str, int],
        outcome: Outcome,
        request: bytes | None = None,
        decision: Decision | None = None,
        message_authenticator: MaStatus | None = None,
        *,
        code: int | None = None,
        id: int | None = None,
        user: str | None = None,
        length: int | None = None,
        error: str | None = None,
        scenario: str | None = None,
        reply: bytes | None = None,
        replies: int = 0,
        sent: float | None = None,
        transmission: int = 1,
    ) -> None:
        self.seq = 0
        self.transmission = transmission
        self.time = time
        self.source = source
        self.outcome = outcome
        self.request = request
        self.decision = decision
        self.message_authenticator = message_authenticator
        self.code = code
        self.id = id
        self.user = None if user is None else user[:MAX_SUMMARY_TEXT]
        self.length = length
        self.error = None if error is None else error[:MAX_SUMMARY_TEXT]
        self.scenario = scenario
        self.reply = reply
        self.replies = replies
        self.sent = sent
        self.size = ENTRY_OVERHEAD + len(source[0])
        if request is not None:
            self.size += len(request)
        if self.user is not None:  # what is kept
            self.size += len(self.user)
        if self.error is not None:
            self.size += len(self.error)

    def set_reply(self, reply: bytes, replies: int) -> None:
        self.reply, self.replies = reply, replies
        self.size += len(reply)


class Journal:
    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        file: Path | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.max_bytes = max_bytes
        self.time_scale = time_scale
        self._entries: deque[Entry] = deque()
        self._bytes = 0
        self._seq = 0
        self.evicted = 0
        self._pending: dict[int, Entry] = {}  # delayed replies, written to the file once sent
        self._listeners: list[Callable[[str, Entry], None]] = []
        self._file: TextIO | None = None
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            self._file = file.open("a", encoding="utf-8")

    def add(self, entry: Entry) -> Entry:
        self._seq += 1
        entry.seq = self._seq
        self._entries.append(entry)
        self._bytes += entry.size
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            self._bytes -= self._entries.popleft().size
            self.evicted += 1
        if self._file is not None:
            if entry.sent is None and entry.reply is not None:
                self._pending[entry.seq] = entry
            else:
                self._write(entry)
        if self._listeners:  # a copy: a listener may stop listening meanwhile
            for listener in tuple(self._listeners):
                listener(ADDED, entry)
        return entry

    def mark_sent(self, entry: Entry, when: float) -> None:
        entry.sent = when
        if self._pending.pop(entry.seq, None) is not None:
            self._write(entry)
        for listener in tuple(self._listeners):
            listener(SENT, entry)

    def listen(self, listener: Callable[[str, Entry], None]) -> None:
        """Call ``listener(ADDED | SENT, entry)`` from now on (the live stream)."""
        self._listeners.append(listener)

    def unlisten(self, listener: Callable[[str, Entry], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _write(self, entry: Entry) -> None:
        assert self._file is not None
        self._file.write(json.dumps(self.render(entry), default=str) + "\n")
        self._file.flush()

    # reading

    def after(self, since: int, count: int) -> list[Entry]:
        """Up to ``count`` entries with a sequence number above ``since``, oldest first."""
        if not self._entries:
            return []
        start = max(0, since + 1 - self._entries[0].seq)
        return list(itertools.islice(self._entries, start, start + count))

    def entries(
        self, user: str | None = None, since: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while limit is None or len(found) < limit:
            batch = self.after(since, 500)
            if not batch:
                break
            for entry in batch:
                since = entry.seq
                if user is None or entry.user == user:
                    found.append(self.render(entry))
                    if limit is not None and len(found) >= limit:
                        break
        return found

    @property
    def last_seq(self) -> int:
        return self._seq

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self._entries),
            "bytes": self._bytes,
            "maxBytes": self.max_bytes,
            "evicted": self.evicted,
            "lastSeq": self._seq,
        }

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def close(self) -> None:
        if self._file is not None:
            for entry in self._pending.values():
                self._write(entry)  # still pending at shutdown: sent stays null
            self._pending.clear()
            self._file.close()
            self._file = None

    def render(self, entry: Entry) -> dict[str, Any]:
        """The JSON shape of an entry (docs/mock-radius.md)."""
        shown: dict[str, Any] = {
            "seq": entry.seq,
            "time": round(entry.time, 6),
            "source": f"{entry.source[0]}:{entry.source[1]}",
            "outcome": entry.outcome.value,
            "timeScale": self.time_scale,
        }
        if entry.code is not None:
            shown["code"] = code_label(entry.code)
            shown["id"] = entry.id
        shown["user"] = entry.user
        if entry.request is not None:
            shown.update(request_fields(entry.request))
        if entry.length is not None:
            shown["length"] = entry.length
        if entry.error is not None:
            shown["error"] = entry.error
        decision = entry.decision
        scenario = entry.scenario or (decision.scenario if decision is not None else None)
        if scenario is not None:
            shown["scenario"] = scenario
        if entry.message_authenticator is not None:
            shown["messageAuthenticator"] = _value(entry.message_authenticator)
        if entry.outcome.summary_only:
            return shown
        shown["step"] = None if decision is None else decision.step
        shown["transmission"] = entry.transmission  # 2, 3...: a retransmission of a dropped one
        if entry.reply is not None:
            shown["reply"] = {
                **reply_fields(entry.reply),
                "fault": None if decision is None else _value(decision.fault),
                "datagrams": entry.replies,
            }
        else:
            shown["reply"] = None
        shown["delay"] = 0.0 if decision is None else decision.delay * self.time_scale
        shown["sent"] = None if entry.sent is None else round(entry.sent, 6)
        near = None if decision is None else decision.near_miss
        shown["nearMiss"] = (
            None if near is None else {"step": near.step, "failed": list(near.failed)}
        )
        shown["hint"] = None if decision is None else decision.hint
        return shown
