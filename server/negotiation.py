"""Accept-header version negotiation, checked before anything else on every route.

The vendor's CLI probes the supported range by sending v5 and reading min/max from the 406, so
this runs as the outermost middleware, before routing and authentication.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import not_acceptable
from server.responses import error_response

_MEDIA_TYPE = re.compile(r"^application/vnd\.appgate\.peer-v(\d{1,4})\+json$", re.IGNORECASE)
_MAX_ECHO = 256


def accepted_version(header: str | None, min_version: int, max_version: int) -> int | None:
    """The version of the first acceptable media range in ``header``, else None. A range with
    ``q=0`` is one the client refuses (RFC 9110, 12.4.2), so it never counts."""
    if header is None:
        return None
    for media_range in header.split(","):
        media_type, *parameters = media_range.split(";")
        match = _MEDIA_TYPE.match(media_type.strip())
        if match is None or _refused(parameters):
            continue
        if min_version <= int(match.group(1)) <= max_version:
            return int(match.group(1))
    return None


def _refused(parameters: list[str]) -> bool:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip()) <= 0
            except ValueError:
                return True  # a weight that is not a number: not an acceptable range
    return False


class AcceptVersionMiddleware:
    def __init__(self, app: ASGIApp, min_version: int, max_version: int) -> None:
        self.app = app
        self.min_version = min_version
        self.max_version = max_version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = [value for name, value in scope["headers"] if name == b"accept"]
        header = b", ".join(raw).decode("latin-1") if raw else None
        version = accepted_version(header, self.min_version, self.max_version)
        if version is None:
            shown = None if header is None else header[:_MAX_ECHO]
            error = not_acceptable(shown, self.min_version, self.max_version)
            await error_response(error)(scope, receive, send)
            return
        scope.setdefault("state", {})["api_version"] = version
        await self.app(scope, receive, send)
