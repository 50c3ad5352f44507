# -*- test-case-name: tests.test_test_control, tests.test_test_control_units -*-
"""Control of the TCP connection beneath a request, for the faults ASGI cannot express.

ASGI gives an application no way to reset a connection, close it unanswered or write bytes that
are not HTTP. The server's HTTP protocol (server/http_guard.py) offers a hook for it, a handle
per connection in each request's scope; under test control, the command line hands it
``CONNECTION``, whose handles are these. They work under TLS too (the bytes then travel inside
the TLS stream, the reset beneath it).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from appgate_mfa_server.http_guard import ConnectionExtension

_LINGER_ZERO = struct.pack("ii", 1, 0)  # on, 0 s: close() sends a RST instead of a FIN
CLOSE_WAIT_SECONDS = 5.0


class ConnectionControl:
    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._lost: asyncio.Future[None] = loop.create_future()

    def abort(self) -> None:
        """A real connection reset: the client's next read fails with ECONNRESET."""
        raw: Any = self._transport.get_extra_info("socket")
        if raw is not None:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        self._transport.abort()

    def close(self) -> None:
        """Close after what was written has gone (a FIN)."""
        self._transport.close()

    def write(self, data: bytes) -> None:
        self._transport.write(data)

    def connection_lost(self) -> None:
        """Called by the protocol when the connection is gone."""
        if not self._lost.done():
            self._lost.set_result(None)

    async def closed(self) -> None:
        """Wait until the protocol has seen the connection go, so that the server treats the
        request as one whose client left, not as one the application forgot to answer."""
        async with asyncio.timeout(CLOSE_WAIT_SECONDS):
            await asyncio.shield(self._lost)


CONNECTION = ConnectionExtension("mfa.connection", ConnectionControl)


def from_scope(scope: Any) -> ConnectionControl | None:
    """The request's connection, or None when the server does not offer it (another ASGI
    server, or test control off)."""
    control = CONNECTION.find(scope)
    return control if isinstance(control, ConnectionControl) else None
