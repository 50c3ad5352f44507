"""The HTTP control API on loopback (Twisted web), documented in README.md.

GET    /health                      {"status": "ok", ...}
GET    /scenarios                   the loaded scenarios and which is active
POST   /activate   {"scenario", "user"?}   globally, or for one User-Name (null clears)
POST   /reset      {"user"?}        forget sessions (and the duplicate cache)
GET    /journal?user=&since=&limit= journal entries, oldest first, a page at a time
DELETE /journal                     clear the journal

The journal is written out in chunks, one per reactor turn, so reading a large journal never
holds up RADIUS replies.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from mock_radius.engine import UnknownScenario
from mock_radius.protocol import MockRadiusProtocol

DEFAULT_PAGE = 1000
MAX_PAGE = 10_000
MAX_PER_USER = 10_000
CHUNK = 200  # entries looked at per reactor turn while a journal page is written


class ControlResource(Resource):
    isLeaf = True

    def __init__(self, protocol: MockRadiusProtocol) -> None:
        super().__init__()
        self.protocol = protocol

    def render(self, request: Request) -> bytes | int:
        request.setHeader(b"content-type", b"application/json")
        method = (request.method or b"").decode()
        path = (request.path or b"").decode().rstrip("/") or "/"
        try:
            if (method, path) == ("GET", "/journal"):
                return self._journal_page(request)
            status, body = self._dispatch(method, path, request)
        except _Error as error:
            status, body = error.status, {"error": error.message}
        request.setResponseCode(status)
        return json.dumps(body, default=str).encode()

    def _journal_page(self, request: Request) -> int:
        args = request.args or {}
        user_arg = args.get(b"user", [None])[0]
        user = user_arg.decode("utf-8", "replace") if isinstance(user_arg, bytes) else None
        since = _integer(args, b"since", 0, 0, None)
        limit = _integer(args, b"limit", DEFAULT_PAGE, 1, MAX_PAGE)
        journal = self.protocol.journal
        reactor = self.protocol.reactor
        request.setResponseCode(200)
        request.write(b'{"entries": [')
        progress = {"since": since, "found": 0, "gone": False}
        request.notifyFinish().addErrback(lambda _failure: progress.update(gone=True))

        def write_chunk() -> None:
            if progress["gone"]:
                return
            batch = journal.after(progress["since"], CHUNK)
            parts: list[str] = []
            for entry in batch:
                progress["since"] = entry.seq
                if user is not None and entry.user != user:
                    continue
                parts.append(json.dumps(journal.render(entry), default=str))
                progress["found"] += 1
                if progress["found"] >= limit:
                    break
            if parts:
                lead = ", " if progress["found"] > len(parts) else ""
                request.write((lead + ", ".join(parts)).encode())
            full = progress["found"] >= limit
            if full or len(batch) < CHUNK:
                more = full and journal.last_seq > progress["since"]
                tail = {"next": progress["since"], "more": more}
                request.write(b"], " + json.dumps(tail).encode()[1:])
                request.finish()
            else:
                reactor.callLater(0, write_chunk)  # let datagrams in before the next chunk

        write_chunk()
        return NOT_DONE_YET

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
                "lostReplies": self.protocol.lost_replies,
                **engine.describe(),
                "pending": self.protocol.pending(),
                "duplicateCache": len(self.protocol.dedup) + len(self.protocol.accounting.dedup),
                "journal": journal.stats(),
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
            if (
                user is not None
                and user not in engine.per_user
                and name is not None
                and (len(engine.per_user) >= MAX_PER_USER)
            ):
                raise _Error(400, f"at most {MAX_PER_USER} per-user activations")
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
        journal.clear()  # DELETE /journal (GET is streamed by _journal_page)
        return 200, {"cleared": True}


def _integer(args: dict[bytes, list[bytes]], name: bytes, default: int, low: int,
             high: int | None) -> int:  # fmt: skip
    raw = args.get(name, [b""])[0] or b""
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _Error(400, f"{name.decode()} must be an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"from {low}" + (f" to {high}" if high is not None else "")
        raise _Error(400, f"{name.decode()} must be {bound}")
    return value


class _Error(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
