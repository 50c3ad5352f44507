# -*- test-case-name: tests.test_test_control_units -*-
"""Which requests may reach /_test/: none that a web page in the developer's browser can make.

Test control listens on loopback, but a browser on the same machine reaches loopback too. Two
ways a page of any site could then drive it: DNS rebinding (the page's own name is made to
resolve to 127.0.0.1, and its script talks to the server with ``Host: evil.example``, reading
the answers as same-origin) and cross-site requests (a form or ``fetch`` posting to
``http://127.0.0.1:PORT/_test/reset``; the page cannot read the answer, but the reset is done).
So /_test/ answers only requests

- whose Host is loopback (``localhost``, ``127.x.y.z``, ``[::1]``, any port) or, with
  ``allowRemote``, any address literal (no DNS name can be rebound onto one) or a name listed
  in ``allowedHosts``; anything else is a 403;
- whose Origin, when a browser sends one, passes the same test (a 403 otherwise; ``null``,
  what sandboxed and file pages send, never does);
- whose Content-Type, when there is a body or the header, is ``application/json``: a page may
  send ``text/plain`` or a form anywhere without asking, JSON only after a CORS preflight,
  which these routes never grant (a 415 otherwise).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import Scope

from appgate_mfa_server import errors


class HostRule:
    """The host names and addresses /_test/ answers to."""

    def __init__(self, *, allow_remote: bool, names: Iterable[str]) -> None:
        self.allow_remote = allow_remote
        self.names = {"localhost", *(name.lower().rstrip(".") for name in names)}

    def allows(self, host: str) -> bool:
        """``host``: a name or an address, without port or brackets."""
        host = host.lower().rstrip(".")
        if host in self.names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return self.allow_remote or address.is_loopback


def _host_of_header(value: str) -> str | None:
    """The host part of a Host header value (``name``, ``name:port``, ``[v6]:port``)."""
    if value.startswith("["):
        inside, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
        return inside
    name, colon, port = value.rpartition(":")
    if not colon:
        return value
    return name if port.isdigit() and ":" not in name else None


def _header(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope["headers"] if key == name]


def refusal(scope: Scope, rule: HostRule) -> errors.ApiError | None:
    """Why this request must not reach /_test/, as the error to answer; None if it may."""
    hosts = _header(scope, b"host")
    host = _host_of_header(hosts[0].strip()) if len(hosts) == 1 else None
    if host is None or not rule.allows(host):
        return errors.forbidden("/_test/ answers only requests for a loopback host name.")
    for origin in _header(scope, b"origin"):
        try:
            origin_host = urlsplit(origin.strip()).hostname
        except ValueError:
            origin_host = None
        if origin_host is None or not rule.allows(origin_host):
            return errors.forbidden("/_test/ answers no request from another site's page.")
    types = _header(scope, b"content-type")
    has_body = any(v.strip() not in ("", "0") for v in _header(scope, b"content-length"))
    if types or has_body or _header(scope, b"transfer-encoding"):
        media = types[0].split(";", 1)[0].strip().lower() if len(types) == 1 else ""
        if media != "application/json":
            return errors.unsupported_media_type("Bodies sent to /_test/ must be JSON.")
    return None
