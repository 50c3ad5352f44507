# -*- test-case-name: tests.test_errors, tests.test_serving -*-
"""The one ASGI middleware in front of the routes: the Accept check, the access line, and the
direct call of the fixed routes.

The vendor's CLI probes the supported range by sending v5 and reading min/max from the 406, so
the check runs on every path, before routing and authentication. One middleware instead of two
saves a layer of coroutines and closures on every request.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appgate_mfa_server import logs
from appgate_mfa_server.errors import not_acceptable
from appgate_mfa_server.negotiation import accepted_version
from appgate_mfa_server.responses import error_response

MAX_ECHO = 256  # characters of a bad Accept header repeated in the 406


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        min_version: int,
        max_version: int,
        access_log: bool = True,
        direct: dict[tuple[str, str], ASGIApp] | None = None,
    ) -> None:
        self.app = app
        self.direct = direct or {}  # (method, path) -> an endpoint that answers its own errors
        self.min_version = min_version
        self.max_version = max_version
        self.access_log = access_log
        self._versions: dict[str | None, int | None] = {}  # Accept header -> version, bounded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._checked(scope, receive, noting_status)
        finally:
            if self.access_log:
                logs.access(scope["method"], scope["path"], status, time.perf_counter() - started)

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = [value for name, value in scope["headers"] if name == b"accept"]
        header = b", ".join(raw).decode("latin-1") if raw else None
        version = self._versions.get(header, -1)
        if version == -1:
            version = accepted_version(header, self.min_version, self.max_version)
            if len(self._versions) >= 256:  # clients choose the header: keep the cache small
                self._versions.clear()
            self._versions[header] = version
        if version is None:
            shown = None if header is None else header[:MAX_ECHO]
            error = not_acceptable(shown, self.min_version, self.max_version)
            await error_response(error)(scope, receive, send)
            return
        scope.setdefault("state", {})["api_version"] = version
        endpoint = self.direct.get((scope["method"], scope["path"]))
        if endpoint is not None:
            scope["path_params"] = {}
            await endpoint(scope, receive, send)
            return
        await self.app(scope, receive, send)
