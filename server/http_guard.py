"""uvicorn's httptools protocol with the limits an Internet-facing server needs.

uvicorn bounds neither the size of a request head nor the time a client may take to send it,
and keeps a silent connection open for good; its concurrency limit only acts once a head has
arrived. Clients that trickle header bytes can therefore hold every connection. This subclass
adds, per connection: a cap on the bytes of a request head (431, then close), a deadline for
each request head (408, then close; also for a connection that never sends a byte), and a cap
on open connections (the excess is closed at once). Errors it answers use the API's JSON shape.

Under test control it also hands each request a handle on its connection (a reset, a close
without an answer, raw bytes: server/testcontrol/connection.py), which ASGI does not offer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from server.testcontrol.connection import EXTENSION, ConnectionControl

log = logging.getLogger("mfa.server")


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 32 * 1024
    head_timeout: float = 10.0
    max_connections: int = 1000


def error_bytes(status: int, error_id: str, message: str) -> bytes:
    """A complete HTTP/1.1 error response that closes the connection."""
    body = json.dumps({"id": error_id, "message": message}).encode()
    head = (
        STATUS_LINE[status] + b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
    )
    return head + body


class _Refusals:
    """Connections refused over the cap: the first of a burst is logged at once, the rest as
    one count when the burst is over, never one line per connection (a flood of connections
    must not become a flood of log lines)."""

    WINDOW_SECONDS = 5.0

    def __init__(self) -> None:
        self.count = 0
        self._window_open = False

    def add(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        if self._window_open:
            self.count += 1
            return
        self._window_open = True
        self._log(1, limit)
        loop.call_later(self.WINDOW_SECONDS, self._close_window, limit)

    def _close_window(self, limit: int) -> None:
        self._window_open = False
        if self.count:
            self._log(self.count, limit)
            self.count = 0

    @staticmethod
    def _log(count: int, limit: int) -> None:
        log.warning(
            "connections refused",
            extra={"fields": {"event": "connections_refused", "count": count,
                              "maxConnections": limit}},
        )  # fmt: skip


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits = ConnectionLimits()
    refusals = _Refusals()
    connection_control = False  # test control: a ConnectionControl in every request's scope

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._head_started = 0.0
        self._control: ConnectionControl | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.refusals.add(self.loop, self.limits.max_connections)
            transport.abort()
            return
        if self.connection_control:
            self._control = ConnectionControl(transport, self.loop)
        self._head_started = self.loop.time()
        self._start_sweeping()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._control is not None:
            self._control.connection_lost()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.limits.max_header_bytes:
            limit = self.limits.max_header_bytes
            message = f"The request head is larger than {limit} bytes."
            self._refuse(431, "request header fields too large", message)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._control is not None:
            self.scope.setdefault("extensions", {})[EXTENSION] = {"control": self._control}
        if not self._in_head:
            self._in_head = True
            self._head_bytes = 0
            self._head_started = self.loop.time()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        # Answered before its body was read (a 406, a 413, a 408 for a slow body...): the rest
        # of that body would otherwise arrive as slowly as the client likes on a kept-alive
        # connection, outside every deadline. Close instead.
        if self.cycle is not None and self.cycle.more_body and not self.transport.is_closing():
            self.server_state.total_requests += 1
            self.transport.close()
            return
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "bad request", "The request is not valid HTTP/1.1.")

    # Deadlines are checked by one sweep over the connections a few times per timeout, not by a
    # timer per request: arming and cancelling a timer on every request cost more.

    def _start_sweeping(self) -> None:
        state: Any = self.server_state
        if not getattr(state, "mfa_sweeping", False):
            state.mfa_sweeping = True
            _sweep_forever(self.loop, self.connections, self.limits.head_timeout)

    def _refuse(self, status: int, error_id: str, message: str) -> None:
        self._in_head = False
        if not self.transport.is_closing():
            self.transport.write(error_bytes(status, error_id, message))
            self.transport.close()


def _sweep_forever(loop: asyncio.AbstractEventLoop, connections: set[Any], timeout: float) -> None:
    """Every so often, answer 408 and close the connections whose request head is late."""
    every = min(1.0, timeout / 4)

    def sweep() -> None:
        deadline = loop.time() - timeout
        for connection in list(connections):
            if (
                isinstance(connection, GuardedHttpToolsProtocol)
                and connection._in_head
                and connection._head_started <= deadline
            ):
                connection._refuse(
                    408, "request timeout", "The request head did not arrive in time."
                )
        loop.call_later(every, sweep)

    loop.call_later(every, sweep)


def guarded_protocol(
    limits: ConnectionLimits, *, connection_control: bool = False
) -> type[GuardedHttpToolsProtocol]:
    """The protocol class uvicorn should instantiate, bound to these limits."""
    attributes = {
        "limits": limits,
        "refusals": _Refusals(),
        "connection_control": connection_control,
    }
    return type("GuardedHttpTools", (GuardedHttpToolsProtocol,), attributes)
