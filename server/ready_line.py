"""Waiting for a child process's JSON ready line: what starting any of our programs as a
process comes down to (the demo's mock RADIUS server, the pytest plugin's server)."""

from __future__ import annotations

import json
import selectors
import time
from typing import IO, Any


def read_ready_line(stream: IO[str], event: str, timeout: float) -> dict[str, Any] | None:
    """The first line of ``stream`` that is a JSON object with ``"event": event``; None when
    the stream ends, or ``timeout`` passes, first. Never blocks past the timeout."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                break
            line = stream.readline()
            if not line:  # the process ended
                break
            try:
                ready = json.loads(line)
            except ValueError:
                continue
            if isinstance(ready, dict) and ready.get("event") == event:
                return ready
    finally:
        selector.close()
    return None
