# -*- test-case-name: tests.test_test_control -*-
"""What the server was asked under test control, for a client test to assert on.

An entry holds the request line's method and path, the answer's status, the Accept header and
the API version it negotiates, and the fault that answered, if any: never another header, a
body or a query string, so no password, OTP, secret or token ever lands here. The journal
keeps the newest entries within a count and a size; what it drops is counted.

Recording is on every request's path, so it only stores a tuple; entries become JSON-ready
dicts (and the Accept header a version) when a test reads them.
"""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any, NamedTuple

from appgate_mfa_server.negotiation import accepted_version

MAX_ENTRIES = 1000
MAX_BYTES = 256 * 1024
MAX_PATH_CHARS = 512  # a longer path is cut, so one entry stays small
MAX_ACCEPT_CHARS = 128
# What an entry's JSON takes besides its path and Accept header, at most: the keys, the
# numbers and a fault's summary. Counting this bound instead of serializing each entry keeps
# the size limit without the cost of json.dumps per request.
ENTRY_OVERHEAD_BYTES = 320
_PLAIN = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")  # printable ASCII JSON keeps as it is


def _json_length(text: str | None) -> int:
    """The length of ``text`` as a JSON string's content (escapes counted)."""
    if text is None:
        return 0
    return len(text) if _PLAIN.fullmatch(text) else len(json.dumps(text)) - 2


class _Entry(NamedTuple):
    seq: int
    time: float
    method: str
    path: str
    status: int | None
    accept: str | None
    fault: dict[str, Any] | None
    ms: float
    size: int


class Journal:
    def __init__(
        self,
        versions: tuple[int, int],
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._versions = versions
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._entries: deque[_Entry] = deque()
        self._bytes = 0
        self._last_seq = 0
        self.dropped = 0

    def add(
        self,
        *,
        time: float,
        method: str,
        path: str,
        status: int | None,
        accept: str | None,
        fault: dict[str, Any] | None,
        ms: float,
    ) -> None:
        self._last_seq += 1
        path = path[:MAX_PATH_CHARS]
        accept = None if accept is None else accept[:MAX_ACCEPT_CHARS]
        size = ENTRY_OVERHEAD_BYTES + _json_length(path) + _json_length(accept)
        self._entries.append(_Entry(self._last_seq, time, method[:16], path, status, accept,
                                    fault, ms, size))  # fmt: skip
        self._bytes += size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._bytes -= self._entries.popleft().size
            self.dropped += 1

    def since(self, seq: int) -> list[dict[str, Any]]:
        """Entries after ``seq``, oldest first."""
        return [self._view(entry) for entry in self._entries if entry.seq > seq]

    def _view(self, entry: _Entry) -> dict[str, Any]:
        return {
            "seq": entry.seq, "time": entry.time, "method": entry.method, "path": entry.path,
            "status": entry.status,
            "apiVersion": accepted_version(entry.accept, *self._versions),
            "accept": entry.accept, "fault": entry.fault, "ms": round(entry.ms, 2),
        }  # fmt: skip

    def clear(self) -> None:
        """Forget the entries; sequence numbers go on, so a ``since`` kept by a test stays
        meaningful."""
        self._entries.clear()
        self._bytes = 0
        self.dropped = 0
