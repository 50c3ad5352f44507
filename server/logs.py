"""One JSON object per log line on stderr, so logs can be searched; callers pass only safe
fields (never a password, OTP, secret, token or traceback).

Access and audit lines, one or two per request, skip the logging module: building a LogRecord
and formatting it cost a third of a request's CPU. They are dumped straight into a buffer that
is written out within ``FLUSH_DELAY`` (or at once when large or urgent), in chunks of at most
``PIPE_BUF`` bytes that end on a line, so the lines of several worker processes sharing one
stderr never interleave. Operational messages (warnings, errors, uvicorn's) still go through
the logging module, into the same stream.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import threading
import time
from json.encoder import encode_basestring_ascii
from typing import Any, BinaryIO

FLUSH_DELAY = 0.05
FLUSH_BYTES = 64 * 1024
PIPE_BUF = 4096
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
# made once (json.dumps with default=... makes one a call); compact, as the fixed heads are
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


class LineSink:
    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream
        self._pending: list[bytes] = []
        self._size = 0
        self._flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush waits on
        self._lock = threading.Lock()  # tests run servers in threads; a server has one loop
        self.level = LEVELS["info"]

    @property
    def stream(self) -> BinaryIO:
        return self._stream if self._stream is not None else sys.stderr.buffer

    def emit(self, entry: dict[str, Any], *, urgent: bool = False) -> None:
        self.emit_line(_ENCODER.encode(entry), urgent=urgent)

    def emit_line(self, text: str, *, urgent: bool = False) -> None:
        """``text``: one JSON object, without the newline."""
        line = text.encode() + b"\n"
        with self._lock:
            self._pending.append(line)
            self._size += len(line)
            big = self._size >= FLUSH_BYTES
        if urgent or big:
            self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop here: nothing would flush later
            self.flush()
            return
        if self._flush_on is not loop:
            self._flush_on = loop
            loop.call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        with self._lock:
            self._flush_on = None
            lines, self._pending, self._size = self._pending, [], 0
        chunk = b""
        try:
            for line in lines:
                if chunk and len(chunk) + len(line) > PIPE_BUF:
                    self._write(chunk)
                    chunk = b""
                chunk += line
            if chunk:
                self._write(chunk)
        except (OSError, ValueError):  # stderr closed: losing log lines must not stop the server
            pass

    def _write(self, data: bytes) -> None:
        stream = self.stream  # one chunk of at most PIPE_BUF bytes: one write(2)
        stream.write(data)
        stream.flush()


SINK = LineSink()
atexit.register(SINK.flush)


def audit(event: str, **fields: Any) -> None:
    """An audit event (login_ok, mfa_failed, lockout, ...)."""
    if SINK.level <= LEVELS["info"]:
        head = _AUDIT_HEAD % (time.time(), _quote(event))
        SINK.emit_line(head + _rest(fields) + "}")


def _rest(fields: dict[str, Any]) -> str:
    """``,"key":value...`` of the fields. Text values, the usual kind (a user, a provider, a
    type), are quoted in C without a JSONEncoder pass: a third of the cost of an audit line."""
    parts = []
    for key, value in fields.items():
        if type(value) is not str:
            rest = _ENCODER.encode(fields)
            return "" if rest == "{}" else "," + rest[1:-1]
        parts.append("," + _quote(key) + ":" + _quote(value))
    return "".join(parts)


def access(method: str, path: str, status: int, seconds: float) -> None:
    """Method, path, status and duration (logged in ms) of a request; never headers, bodies
    or queries."""
    if SINK.level <= LEVELS["info"]:
        line = _ACCESS_LINE % (time.time(), _quote(method), _quote(path), status, seconds * 1000)
        SINK.emit_line(line)


_quote = encode_basestring_ascii  # a JSON string literal, in C
_AUDIT_HEAD = '{"ts":%.3f,"level":"info","logger":"mfa.audit","event":%s'
_ACCESS_LINE = (
    '{"ts":%.3f,"level":"info","logger":"mfa.access","event":"request","method":%s,'
    '"path":%s,"status":%d,"ms":%.2f}'
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_entry(record), default=str)


def record_entry(record: logging.LogRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ts": round(record.created, 3),
        "level": record.levelname.lower(),
        "logger": record.name,
    }
    fields = getattr(record, "fields", None)
    if isinstance(fields, dict):
        entry.update(fields)
    else:
        entry["message"] = record.getMessage()
    if record.exc_info and record.exc_info[0] is not None:
        # the type only: a traceback may hold secrets from local variables
        entry["exception"] = record.exc_info[0].__name__
    return entry


class _SinkHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            SINK.emit(record_entry(record), urgent=record.levelno >= logging.WARNING)
        except Exception:  # as logging.Handler does: a bad record must not raise
            self.handleError(record)


def configure_logging(level: str = "info") -> None:
    SINK.level = LEVELS[level.lower()]
    root = logging.getLogger()
    root.handlers[:] = [_SinkHandler()]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def quiet_loop_errors(loop: asyncio.AbstractEventLoop, every: float = 10.0) -> None:
    """Errors the event loop reports itself (a failed accept() when file descriptors run out,
    say) are logged once per ``every`` seconds per kind, with a count: a flood of connections
    must not become a flood of log lines, nor print tracebacks."""
    last: dict[str, float] = {}
    suppressed: dict[str, int] = {}
    logger = logging.getLogger("mfa.server")

    def handle(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        kind = f"{context.get('message', 'event loop error')}: {type(exc).__name__ if exc else ''}"
        now = time.monotonic()
        if now - last.get(kind, -every) < every:
            suppressed[kind] = suppressed.get(kind, 0) + 1
            return
        last[kind] = now
        logger.error(
            "event loop error",
            extra={"fields": {"event": "loop_error", "error": kind,
                              "suppressedSinceLast": suppressed.pop(kind, 0)}},
        )  # fmt: skip

    loop.set_exception_handler(handle)
