"""The HTTP control API on loopback (Twisted web), documented in README.md.

GET    /health                      {"status": "ok", ...}
GET    /scenarios                   the loaded scenarios and which is active
POST   /activate   {"scenario", "user"?}   globally, or for one User-Name (null clears)
POST   /reset      {"user"?}        forget sessions (and the duplicate cache)
GET    /journal?user=&since=        journal entries, oldest first
DELETE /journal                     clear the journal
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from mock_radius.engine import UnknownScenario
from mock_radius.protocol import MockRadiusProtocol


class ControlResource(Resource):
    isLeaf = True

    def __init__(self, protocol: MockRadiusProtocol) -> None:
        super().__init__()
        self.protocol = protocol

    def render(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        method = (request.method or b"").decode()
        path = (request.path or b"").decode().rstrip("/") or "/"
        try:
            status, body = self._dispatch(method, path, request)
        except _Error as error:
            status, body = error.status, {"error": error.message}
        request.setResponseCode(status)
        return json.dumps(body, default=str).encode()

    def _body(self, request: Request) -> dict[str, Any]:
        assert request.content is not None
        raw = request.content.read(65536)
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise _Error(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _Error(400, "the body must be a JSON object")
        return data

    def _dispatch(self, method: str, path: str, request: Request) -> tuple[int, Any]:
        engine = self.protocol.engine
        journal = self.protocol.journal
        routes = {
            ("GET", "/health"),
            ("GET", "/scenarios"),
            ("POST", "/activate"),
            ("POST", "/reset"),
            ("GET", "/journal"),
            ("DELETE", "/journal"),
        }
        if (method, path) not in routes:
            known = {p for _, p in routes}
            raise _Error(405 if path in known else 404, f"no route {method} {path}")
        if path == "/health":
            return 200, {
                "status": "ok",
                "scenarios": len(engine.scenarios),
                "timeScale": self.protocol.time_scale,
                "errors": self.protocol.errors,
                **engine.describe(),
            }
        if path == "/scenarios":
            return 200, {
                "active": engine.active,
                "perUser": engine.per_user,
                "scenarios": [
                    {
                        "name": s.name,
                        "description": s.description.strip(),
                        "users": s.users,
                        "steps": [s.step_name(i) for i in range(len(s.steps))],
                    }
                    for s in engine.scenarios.values()
                ],
            }
        if path == "/activate":
            body = self._body(request)
            name, user = body.get("scenario"), body.get("user")
            if name is not None and not isinstance(name, str):
                raise _Error(400, "scenario must be a string or null")
            if user is not None and not isinstance(user, str):
                raise _Error(400, "user must be a string")
            try:
                engine.activate(name, user)
            except UnknownScenario:
                raise _Error(404, f"no scenario named {name!r}") from None
            return 200, {"active": engine.active, "perUser": engine.per_user}
        if path == "/reset":
            user = self._body(request).get("user")
            if user is not None and not isinstance(user, str):
                raise _Error(400, "user must be a string")
            engine.reset(user)
            if user is None:
                self.protocol.reset()
            return 200, {"reset": user or "all"}
        if method == "DELETE":
            journal.clear()
            return 200, {"cleared": True}
        args = request.args or {}
        user_arg = args.get(b"user", [None])[0]
        since_arg = args.get(b"since", [b"0"])[0] or b"0"
        try:
            since = int(since_arg)
        except ValueError:
            raise _Error(400, "since must be an integer") from None
        user_filter = user_arg.decode() if isinstance(user_arg, bytes) else None
        return 200, {"entries": journal.entries(user_filter, since)}


class _Error(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
