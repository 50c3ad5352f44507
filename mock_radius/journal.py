"""The request journal: what came in and what was done with it, for tests to assert on."""

from __future__ import annotations

import json
import threading
from collections import deque
from pathlib import Path
from typing import Any, TextIO


class Journal:
    def __init__(self, capacity: int = 10_000, file: Path | None = None) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            self._file = file.open("a", encoding="utf-8")

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            entry = {"seq": self._seq, **entry}
            self._entries.append(entry)
            if self._file is not None:
                self._file.write(json.dumps(entry, default=str) + "\n")
                self._file.flush()
        return entry

    def update(self, seq: int, **fields: Any) -> None:
        with self._lock:
            for entry in reversed(self._entries):
                if entry["seq"] == seq:
                    entry.update(fields)
                    break

    def entries(self, user: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(e)
                for e in self._entries
                if e["seq"] > since and (user is None or e.get("user") == user)
            ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
