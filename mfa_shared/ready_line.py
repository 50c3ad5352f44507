"""The JSON ready line: how ``mfa-server`` and ``mock-radius`` tell that they serve, and how
whoever started one as a process (the server's demo, the pytest plugins, the tests, the
benches) waits for it.

Each program prints one line on stdout once it serves, a JSON object whose ``event`` is
``ready`` and whose other fields say where (``port``, ``url``, ``controlPort``...). A reader
skips every other line, and gives up when the process ends or the timeout passes, never later.
Imports neither side.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import IO, Any

READY = "ready"  # the event of the ready line, for both programs


def ready_line(**fields: object) -> str:
    """The ready line to print, with these fields after the event."""
    return json.dumps({"event": READY, **fields})


def is_ready_line(line: dict[str, Any]) -> bool:
    return line.get("event") == READY


def read_json_line(
    stream: IO[str], wanted: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any] | None:
    """The first line of ``stream`` that is a JSON object ``wanted`` accepts; None when the
    stream ends, or ``timeout`` passes, first.

    The lines are read by a thread, with the stream's own ``readline``: waiting on the pipe
    instead (select) misses lines the stream has already read into its buffer, and reading the
    pipe beside the stream would take lines from whoever reads the stream next. After a
    timeout that thread reads on until the process ends: stop the process."""
    found: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def read() -> None:
        try:
            for line in iter(stream.readline, ""):
                try:
                    data = json.loads(line)
                except ValueError:
                    continue
                if isinstance(data, dict) and wanted(data):
                    found.put(data)
                    return
        except (OSError, ValueError):  # closed under it, after a timeout
            pass
        found.put(None)  # the process ended

    threading.Thread(target=read, name="ready-line reader", daemon=True).start()
    try:
        return found.get(timeout=timeout)
    except queue.Empty:
        return None


def read_ready_line(stream: IO[str], timeout: float) -> dict[str, Any] | None:
    """The ready line of the process writing ``stream``; None when it ends, or ``timeout``
    passes, before it is ready."""
    return read_json_line(stream, is_ready_line, timeout)
