"""What the server was asked under test control, for a client test to assert on.

An entry holds the request line's method and path, the answer's status, the API version the
Accept header negotiated and the fault that answered, if any: never a header value but Accept,
never a body or a query string, so no password, OTP, secret or token ever lands here. The
journal keeps the newest entries within a count and a size; what it drops is counted.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

MAX_ENTRIES = 1000
MAX_BYTES = 256 * 1024
MAX_PATH_CHARS = 512  # a longer path is cut, so one entry stays small
MAX_ACCEPT_CHARS = 128


class Journal:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._entries: deque[tuple[int, dict[str, Any]]] = deque()  # (size, entry)
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
        api_version: int | None,
        accept: str | None,
        fault: dict[str, Any] | None,
        ms: float,
    ) -> None:
        self._last_seq += 1
        entry: dict[str, Any] = {
            "seq": self._last_seq,
            "time": time,
            "method": method,
            "path": path[:MAX_PATH_CHARS],
            "status": status,
            "apiVersion": api_version,
            "accept": None if accept is None else accept[:MAX_ACCEPT_CHARS],
            "fault": fault,
            "ms": round(ms, 2),
        }
        size = len(json.dumps(entry))
        self._entries.append((size, entry))
        self._bytes += size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            gone, _ = self._entries.popleft()
            self._bytes -= gone
            self.dropped += 1

    def since(self, seq: int) -> list[dict[str, Any]]:
        """Entries after ``seq``, oldest first."""
        return [entry for _, entry in self._entries if entry["seq"] > seq]

    def clear(self) -> None:
        """Forget the entries; sequence numbers go on, so a ``since`` kept by a test stays
        meaningful."""
        self._entries.clear()
        self._bytes = 0
        self.dropped = 0
