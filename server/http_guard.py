# -*- test-case-name: tests.test_edge_limits, tests.test_attacks -*-
"""uvicorn's httptools protocol with the limits an Internet-facing server needs.

uvicorn bounds neither the size of a request head nor the time a client may take to send it,
keeps a silent connection open for good, parses every request a client pipelines before
answering any, and leaves TLS handshakes to the event loop (uncounted, 60 s each). One client
could therefore hold every connection or all the memory. This subclass adds, per connection:

- a slot, taken at the TCP accept (before any TLS handshake) and given back when the socket
  closes: at most ``max_connections`` per worker and ``max_connections_per_address`` per
  client address (the excess is closed at once), so one address leaves the rest to others;
- a deadline for the TLS handshake, which this protocol sets up itself (asyncio's TLS protocol,
  on uvloop and asyncio alike), so that the connection is counted from the accept;
- a cap on the bytes of a request head (431, then close) and a deadline for each request head
  (408, then close; also for a connection that never sends a byte);
- at most ``max_unanswered`` requests parsed and not yet answered: past that, reading pauses
  and the bytes already read wait unparsed until answers go out;
- a deadline for a client that reads no answer: once the answers it does not read fill the
  buffers, it has ``head_timeout`` to start reading before the connection is dropped;
- one write per answer: uvicorn writes a response's head and body apart, each a system call
  and a TCP segment of its own; what a turn of the event loop writes leaves as one.

Errors it answers use the API's JSON shape. It also offers a hook, ``ConnectionExtension``: a
handle made per connection and put into each request's scope, for what ASGI does not offer (a
reset, a close without an answer, raw bytes); the place that composes the server chooses one
(test control's, server/testcontrol/connection.py) or none.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
from asyncio import sslproto
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any, Generic, Protocol, TypeVar

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from appgate_mfa_server import errors

log = logging.getLogger("mfa.server")

SLICE_BYTES = 1024  # bytes parsed at a time, so a pipelined burst stops near max_unanswered


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 32 * 1024
    head_timeout: float = 10.0
    max_connections: int = 1000
    max_connections_per_address: int = 100
    tls_handshake_timeout: float = 10.0
    max_unanswered: int = 16  # pipelined requests parsed ahead of their answers


class ConnectionHandle(Protocol):
    def connection_lost(self) -> None:
        """Called once the connection is gone."""


Handle = TypeVar("Handle", bound=ConnectionHandle)


@dataclass(frozen=True)
class ConnectionExtension(Generic[Handle]):
    """A handle on each connection, made by ``make`` when HTTP starts on it and put into the
    scope of every request it carries, at ``scope["extensions"][name]`` (an ASGI extension,
    a dict): how a part of the application reaches the connection beneath a request."""

    name: str
    make: Callable[[asyncio.Transport, asyncio.AbstractEventLoop], Handle]

    def put(self, scope: Any, handle: Handle) -> None:
        scope.setdefault("extensions", {})[self.name] = {"handle": handle}

    def find(self, scope: Any) -> object | None:
        """What the server put into this request's scope; None from a server without it."""
        extension = scope.get("extensions", {}).get(self.name)
        return extension.get("handle") if isinstance(extension, dict) else None


class Limit(StrEnum):
    """A limit on connections, by its name in the configuration (and in the log)."""

    CONNECTIONS = "maxConnections"
    PER_ADDRESS = "maxConnectionsPerAddress"

    def of(self, limits: ConnectionLimits) -> int:
        if self is Limit.CONNECTIONS:
            return limits.max_connections
        return limits.max_connections_per_address


class Late(Enum):
    """What a connection is late with."""

    HEAD = "head"  # the client has not sent its request head in time
    READER = "reader"  # the client has read no answer for too long


def error_bytes(error: errors.ApiError) -> bytes:
    """A complete HTTP/1.1 error response that closes the connection."""
    body = json.dumps(error.body()).encode()
    head = (
        STATUS_LINE[error.status] + b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
    )
    return head + body


def address_key(peer: Any) -> str:
    """Whose share a connection counts against: its IPv4 address, or the /64 network of an
    IPv6 address (a single host is commonly given a whole /64, so counting its addresses one
    by one would let it take every slot)."""
    if not isinstance(peer, tuple) or not peer or not isinstance(peer[0], str):
        return ""
    host = peer[0]
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class _Slots:
    """The connections of one worker, counted from the TCP accept, in all and per address."""

    def __init__(self) -> None:
        self.total = 0
        self.by_address: dict[str, int] = {}  # at most max_connections keys

    def take(self, address: str, limits: ConnectionLimits) -> Limit | None:
        """None when the connection may stay, else the limit it is over."""
        held = self.by_address.get(address, 0)
        if self.total >= limits.max_connections:
            return Limit.CONNECTIONS
        if held >= limits.max_connections_per_address:
            return Limit.PER_ADDRESS
        self.total += 1
        self.by_address[address] = held + 1
        return None

    def give_back(self, address: str) -> None:
        self.total -= 1
        held = self.by_address[address] - 1
        if held:
            self.by_address[address] = held
        else:
            del self.by_address[address]


class _Refusals:
    """Connections refused over a limit: the first of a burst is logged at once, the rest as
    one count when the burst is over, never one line per connection (a flood of connections
    must not become a flood of log lines)."""

    WINDOW_SECONDS = 5.0

    def __init__(self) -> None:
        self.count: dict[Limit, int] = {}  # refusals in the open window
        self._window_open: set[Limit] = set()

    def add(self, loop: asyncio.AbstractEventLoop, name: Limit, limit: int, address: str) -> None:
        if name in self._window_open:
            self.count[name] = self.count.get(name, 0) + 1
            return
        self._window_open.add(name)
        self._log(name, 1, limit, address)
        loop.call_later(self.WINDOW_SECONDS, self._close_window, name, limit)

    def _close_window(self, name: Limit, limit: int) -> None:
        self._window_open.discard(name)
        count = self.count.pop(name, 0)
        if count:
            self._log(name, count, limit, None)

    @staticmethod
    def _log(name: Limit, count: int, limit: int, address: str | None) -> None:
        fields: dict[str, object] = {
            "event": "connections_refused", "count": count, name.value: limit
        }  # fmt: skip
        if address is not None and name is Limit.PER_ADDRESS:
            fields["address"] = address  # the first of the burst: who is holding its share
        log.warning("connections refused", extra={"fields": fields})


class _Flow(FlowControl):
    """uvicorn resumes reading whenever an answer goes out or the application waits for a
    body; this lets it only while the connection has room for more requests."""

    def __init__(self, transport: asyncio.BaseTransport, may_read: Callable[[], bool]) -> None:
        super().__init__(transport)  # type: ignore[arg-type]
        self._may_read = may_read

    def resume_reading(self) -> None:
        if self.read_paused and self._may_read():
            super().resume_reading()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits = ConnectionLimits()
    slots = _Slots()
    refusals = _Refusals()
    tls: ssl.SSLContext | None = None  # HTTPS: the handshake runs here, under a deadline
    extension: ConnectionExtension[Any] | None = None  # a handle per connection, in each scope

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._head_started = 0.0
        self._handle: ConnectionHandle | None = None
        self._address: str | None = None  # while it holds a slot
        self._established = False  # HTTP runs on it (after the TLS handshake, if any)
        self._secured: sslproto.SSLProtocol | None = None  # HTTPS: the TLS protocol below
        self._unparsed = b""  # read, and waiting for answers to go out before it is parsed
        self._running: RequestResponseCycle | None = None
        self._write_paused_at = 0.0
        self._writer: _CoalescingWriter | None = None

    # The connection's life: a slot at the accept, then TLS, then HTTP.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if self._secured is not None:  # the TLS protocol below says its handshake is done
            self._establish(transport)
            return
        address = address_key(transport.get_extra_info("peername"))
        over = self.slots.take(address, self.limits)
        if over is not None:
            self.refusals.add(self.loop, over, over.of(self.limits), address)
            transport.abort()
            return
        self._address = address
        if self.tls is None:
            self._establish(transport)
        else:
            self._start_tls(transport, self.tls)

    def _start_tls(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        """Put asyncio's TLS protocol between the socket and this one, now, before a byte is
        read (``loop.start_tls`` swaps them a loop iteration later, and uvloop has started
        reading by then). It calls ``connection_made`` again once the handshake is done, and
        ends a handshake, opening or closing, that takes longer than ``tls_handshake_timeout``
        (else a client that never answers the server's close_notify keeps its slot 30 s)."""
        done: asyncio.Future[None] = self.loop.create_future()
        done.add_done_callback(self._handshake_over)
        deadline: Any = self.limits.tls_handshake_timeout  # typeshed says int; any number works
        self._secured = sslproto.SSLProtocol(
            self.loop, self, context, done, server_side=True,
            ssl_handshake_timeout=deadline, ssl_shutdown_timeout=deadline,
        )  # fmt: skip
        raw.set_protocol(self._secured)
        self._secured.connection_made(raw)

    def _handshake_over(self, done: asyncio.Future[None]) -> None:
        if not done.cancelled():
            done.exception()  # read, so that asyncio does not log it as never retrieved
        if not self._established:
            self._give_back_slot()

    def _establish(self, transport: asyncio.Transport) -> None:
        self._established = True
        super().connection_made(transport)
        self.flow = _Flow(transport, self._may_read)
        self._writer = _CoalescingWriter(transport, self.loop)  # every answer of the connection
        if self.extension is not None:
            self._handle = self.extension.make(transport, self.loop)
        self._head_started = self.loop.time()
        self._start_sweeping()

    def connection_lost(self, exc: Exception | None) -> None:
        self._give_back_slot()
        self._unparsed = b""
        if not self._established:
            return  # refused, or lost in the TLS handshake: uvicorn never saw it
        super().connection_lost(exc)
        if self._handle is not None:
            self._handle.connection_lost()

    def _give_back_slot(self) -> None:
        if self._address is not None:
            self.slots.give_back(self._address)
            self._address = None

    # Reading: heads bounded in size, and no more than max_unanswered requests ahead.

    def data_received(self, data: bytes) -> None:
        if self._unparsed:  # read although paused (a read already under way): keep it
            self._unparsed += data
            self.flow.pause_reading()
            return
        if len(data) <= SLICE_BYTES and not self.pipeline:
            self._parse(data)  # the common case: one request, or less, per read
        else:
            self._parse_in_slices(data)

    def _parse_in_slices(self, data: bytes) -> None:
        view = memoryview(data)
        offset = 0
        while offset < len(view):
            if self.transport.is_closing():
                return
            if self._unanswered() >= self.limits.max_unanswered:
                self._unparsed = bytes(view[offset:])
                self.flow.pause_reading()
                return
            piece = view[offset : offset + SLICE_BYTES]
            offset += len(piece)
            self._parse(piece)  # type: ignore[arg-type]  # httptools reads any buffer

    def _parse(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(errors.header_too_large(self.limits.max_header_bytes))

    def _unanswered(self) -> int:
        running = self._running is not None and not self._running.response_complete
        return len(self.pipeline) + running

    def _may_read(self) -> bool:
        return not self._unparsed and self._unanswered() < self.limits.max_unanswered

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.extension is not None and self._handle is not None:
            self.extension.put(self.scope, self._handle)
        if not self._in_head:
            self._in_head = True
            self._head_bytes = 0
            self._head_started = self.loop.time()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = self._writer  # type: ignore[assignment]

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._running = cycle  # the request being answered; those after it wait in pipeline
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        # Answered before its body was read (a 406, a 413, a 408 for a slow body...): the rest
        # of that body would otherwise arrive as slowly as the client likes on a kept-alive
        # connection, outside every deadline. Close instead.
        answered = self._running  # (self.cycle is the newest request parsed, maybe a later one)
        if answered is not None and answered.more_body and not self.transport.is_closing():
            self.server_state.total_requests += 1
            self._close()
            return
        super().on_response_complete()  # which resumes reading, if _may_read allows
        if self._unparsed and self._unanswered() < self.limits.max_unanswered:
            waiting, self._unparsed = self._unparsed, b""
            self._parse_in_slices(waiting)
            if not self.transport.is_closing():
                self.flow.resume_reading()

    # Writing: a client that reads no answer does not keep its connection for good.

    def pause_writing(self) -> None:
        self._write_paused_at = self.loop.time()
        super().pause_writing()

    def send_400_response(self, msg: str) -> None:
        self._refuse(errors.bad_request())

    # Deadlines are checked by one sweep over the connections a few times per timeout, not by a
    # timer per request: arming and cancelling a timer on every request cost more.

    def _start_sweeping(self) -> None:
        state: Any = self.server_state
        if not getattr(state, "mfa_sweeping", False):
            state.mfa_sweeping = True
            _sweep_forever(self.loop, self.connections, self.limits.head_timeout)

    def _late(self, deadline: float) -> Late | None:
        """What the connection is late with, if anything. A head is not late while the server
        has paused reading for want of answers: then the server, not the client, is behind."""
        if self.flow is not None and self.flow.write_paused and self._write_paused_at <= deadline:
            return Late.READER
        if self._in_head and self._head_started <= deadline and self._may_read():
            return Late.HEAD
        return None

    def _refuse(self, error: errors.ApiError) -> None:
        self._in_head = False
        if not self.transport.is_closing():
            self._flush()  # the answers before this one go first
            self.transport.write(error_bytes(error))
            self.transport.close()

    # The answers leave through a _CoalescingWriter; whatever closes the connection here sends
    # what it holds first.

    def _flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def _close(self) -> None:
        self._flush()
        self.transport.close()

    def shutdown(self) -> None:
        self._flush()
        super().shutdown()

    def timeout_keep_alive_handler(self) -> None:
        self._flush()
        super().timeout_keep_alive_handler()


def _sweep_forever(loop: asyncio.AbstractEventLoop, connections: set[Any], timeout: float) -> None:
    """Every so often, answer 408 and close the connections whose request head is late, and
    drop those whose client has stopped reading its answers."""
    every = min(1.0, timeout / 4)

    def sweep() -> None:
        deadline = loop.time() - timeout
        for connection in list(connections):
            if not isinstance(connection, GuardedHttpToolsProtocol):
                continue
            late = connection._late(deadline)
            if late is Late.HEAD:
                connection._refuse(errors.request_timeout("head"))
            elif late is Late.READER:
                connection.transport.abort()  # nothing more can reach a client that won't read
        loop.call_later(every, sweep)

    loop.call_later(every, sweep)


def guarded_protocol(
    limits: ConnectionLimits,
    *,
    tls: ssl.SSLContext | None = None,
    extension: ConnectionExtension[Any] | None = None,
) -> type[GuardedHttpToolsProtocol]:
    """The protocol class uvicorn should instantiate, bound to these limits, with the
    connection counts of one worker."""
    attributes = {
        "limits": limits,
        "slots": _Slots(),
        "refusals": _Refusals(),
        "tls": tls,
        "extension": extension,
    }
    return type("GuardedHttpTools", (GuardedHttpToolsProtocol,), attributes)


class _CoalescingWriter:
    """What a request's cycle writes to: the writes of one turn of the event loop leave as one.
    uvicorn writes a response's head and its body separately, and each write is a send(2) of
    its own on an idle socket; joined, a response costs one system call (and one TCP segment)."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()
