# -*- test-case-name: tests.test_mock_units, tests.test_mock_control -*-
"""The control API's edge: what a request must be before a route sees it.

The control API steers the mock and a developer's browser can reach it, so it refuses what a
hostile web page could make that browser send (DNS rebinding, cross-site requests) and what an
outsider could grow:

- ``Host`` must name this machine by a loopback name or address (``localhost``, 127.x,
  ``[::1]``, any port); a page on ``evil.example`` that re-resolves its name to 127.0.0.1 still
  sends its own name. Bound to another address on purpose (``--control-host``), IP literals are
  accepted too: an address cannot be re-resolved, a name can.
- ``Origin``, when a browser sends one, must be this API's own (``http://`` + the Host): the
  live page's requests are, a foreign page's are refused (403).
- a body must be ``application/json`` (415): a cross-site form can only send ``text/plain``,
  urlencoded or multipart, which need no CORS preflight.
- a body is read up to ``MAX_BODY`` octets; a longer one is refused as soon as its length is
  known (413), before it arrives.
- idle connections are closed after ``--control-idle-timeout`` seconds, and at most
  ``MAX_CONNECTIONS`` are open at once (more are closed at once).

Errors have the project's JSON shape, ``{"id", "message"}``.
"""

from __future__ import annotations

import ipaddress
import json
from http import HTTPStatus
from typing import Any

from twisted.protocols.policies import WrappingFactory
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

MAX_BODY = 64 * 1024  # the largest request body read (the routes take a few fields)
MAX_CONNECTIONS = 64


class Refused(Exception):
    """A request the control API will not serve; rendered as ``{"id", "message"}``."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> bytes:
        return error_body(self.status, self.message)


def error_body(status: HTTPStatus, message: str) -> bytes:
    """The one error shape of the control API (the project's: ``{"id", "message"}``)."""
    return json.dumps({"id": status.phrase.lower(), "message": message}).encode()


def _loopback_name(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_name(header: str) -> str:
    """The name in a Host header, without its port: ``[::1]:80`` -> ``::1``."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Edge:
    """The checks a request's headers must pass; ``loopback_only`` when bound to loopback."""

    def __init__(self, loopback_only: bool = True) -> None:
        self.loopback_only = loopback_only

    def check(self, request: Request) -> None:
        headers = request.requestHeaders
        host = (headers.getRawHeaders(b"host") or [b""])[0].decode("latin-1").strip()
        if host:  # HTTP/1.0 may send none; a browser always does
            name = host_name(host)
            if not (_loopback_name(name) or (not self.loopback_only and _ip_literal(name))):
                raise Refused(
                    HTTPStatus.FORBIDDEN,
                    f"Host {host!r} is not this machine's loopback name or address "
                    "(DNS rebinding is refused): use http://127.0.0.1:PORT",
                )
        origins = headers.getRawHeaders(b"origin") or []
        if origins and origins[0].decode("latin-1") != f"http://{host}":
            raise Refused(
                HTTPStatus.FORBIDDEN,
                f"requests from {origins[0].decode('latin-1')!r} are refused: only the control "
                "API's own page may send them",
            )
        if _has_body(request):
            kind = (headers.getRawHeaders(b"content-type") or [b""])[0].decode("latin-1")
            if kind.split(";", 1)[0].strip().lower() != "application/json":
                raise Refused(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                    f"a body must be application/json, not {kind or 'unlabelled'}",
                )


def _has_body(request: Request) -> bool:
    headers = request.requestHeaders
    length = (headers.getRawHeaders(b"content-length") or [b"0"])[0]
    return headers.hasHeader(b"transfer-encoding") or length.strip() not in (b"", b"0")


class GuardedRequest(Request):
    """A request whose body is refused beyond ``MAX_BODY`` octets, before it is read."""

    _received = 0
    refused = False

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_BODY:
            self._refuse_body()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        self._received += len(data)
        if self._received > MAX_BODY:  # chunked: no length to refuse up front
            self._refuse_body()
            return
        super().handleContentChunk(data)

    def process(self) -> None:
        if not self.refused:
            super().process()

    def _refuse_body(self) -> None:
        """Answer 413 now and close: the channel is mid-request, so the answer is written
        directly, and the rest of the body is never read."""
        self.refused = True
        self.requestHeaders.removeHeader(b"expect")  # no "100 Continue" after the refusal
        status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        body = error_body(status, f"the body may be at most {MAX_BODY} octets")
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        transport: Any = self.channel.transport
        transport.write(head.encode() + body)
        transport.loseConnection()


class _Limited(WrappingFactory):
    """At most ``limit`` connections at once; more are closed as they come."""

    def __init__(self, site: Site, limit: int) -> None:
        super().__init__(site)
        self.limit = limit

    def buildProtocol(self, addr: Any) -> Any:
        if len(self.protocols) >= self.limit:
            return None
        return super().buildProtocol(addr)


def control_site(root: Resource, idle_timeout: float) -> Any:
    """The factory to listen with: guarded requests, an idle timeout, a connection limit."""
    site = Site(root, requestFactory=GuardedRequest, timeout=idle_timeout,
                parsePOSTFormSubmission=False)  # fmt: skip
    site.noisy = False
    limited = _Limited(site, MAX_CONNECTIONS)
    limited.noisy = False
    return limited
