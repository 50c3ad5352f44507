"""One JSON object per log line, so logs can be searched; callers pass only safe fields."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access = logging.getLogger("mfa.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
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
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


class AccessLogMiddleware:
    """Method, path, status and duration of every request; never headers, bodies or queries."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            if access.isEnabledFor(logging.INFO):
                access.info(
                    "request",
                    extra={
                        "fields": {
                            "event": "request",
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "ms": round((time.perf_counter() - started) * 1000, 2),
                        }
                    },
                )


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
