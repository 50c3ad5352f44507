# -*- test-case-name: tests.test_errors, tests.test_attacks -*-
"""What a handler reads of a request, straight from the ASGI scope: a header, the bearer
token, a query parameter, and a bounded JSON object body. No Request object is built: on the
hot path (initialize, one per login) that alone cost more than the handler's own work."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.types import Receive, Scope

from appgate_mfa_server import errors


class Incoming:
    __slots__ = ("receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive

    def header(self, name: bytes) -> str | None:
        """The first value of a header (``name`` in lower case), else None."""
        for key, value in self.scope["headers"]:
            if key == name:
                return str(value.decode("latin-1"))
        return None

    def path_param(self, name: str) -> str:
        return str(self.scope["path_params"][name])

    def query(self, name: str) -> str | None:
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get(name)
        return values[0] if values else None

    def bearer_token(self) -> str | None:
        header = self.header(b"authorization")
        if header is None:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        return value.strip()

    async def json_object(self, limit: int, timeout: float = 10.0) -> dict[str, Any] | None:
        """The body as a JSON object; None when there is no body at all.

        The size is checked before and while reading, so a huge or endless body costs at most
        ``limit`` bytes of memory; a body that trickles in slower than ``timeout`` is a 408.
        """
        declared = self.header(b"content-length")
        if declared == "0" or (declared is None and self.header(b"transfer-encoding") is None):
            return None  # no body: nothing to wait for
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise errors.payload_too_large(limit)
        try:
            async with asyncio.timeout(timeout):
                raw = await self._body(limit)
        except TimeoutError:
            raise errors.request_timeout() from None
        if not raw.strip():
            return None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise errors.json_error("The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise errors.json_error("The request body must be a JSON object.")
        return data

    async def _body(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] != "http.request":  # the client went away
                raise errors.json_error("The request body was cut off.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise errors.payload_too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def read_json_object(
    request: Request, limit: int, timeout: float = 10.0
) -> dict[str, Any] | None:
    """``Incoming.json_object`` for a handler that has a Starlette Request (the /_test/ routes)."""
    return await Incoming(request.scope, request.receive).json_object(limit, timeout)
