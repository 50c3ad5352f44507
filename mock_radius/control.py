# -*- test-case-name: tests.test_mock_control, tests.test_mock_page -*-
"""The HTTP control API on loopback (Twisted web), documented in docs/mock-radius.md.

GET    /                            the live page (HTML and a small script, package data)
GET    /health                      {"status": "ok", ...}, the sockets' kernel drops included
GET    /scenarios                   the loaded scenarios, their steps, which is active
GET    /sessions?limit=             live exchanges and users' counts, newest first
POST   /activate   {"scenario", "user"?}   globally, or for one User-Name (null clears)
POST   /reset      {"user"?}        forget sessions (and the duplicate cache)
GET    /journal?FILTERS&since=&limit=      journal entries, oldest first, a page at a time
GET    /journal/stream?FILTERS&since=      the same, live (Server-Sent Events)
DELETE /journal                     clear the journal

Every request passes ``control_guard`` first (Host, Origin, Content-Type, body size). A
journal page is written out in chunks, one per reactor turn, so reading a large journal never
holds up RADIUS replies.
"""

from __future__ import annotations

import json
from functools import cache
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from mock_radius.control_guard import Edge, Refused
from mock_radius.engine import UnknownScenario
from mock_radius.journal_filter import FilterError, JournalFilter, parse_filter
from mock_radius.journal_stream import StreamHub
from mock_radius.protocol import MockRadiusProtocol

DEFAULT_PAGE = 1000
MAX_PAGE = 10_000
MAX_PER_USER = 10_000
DEFAULT_SESSIONS = 100
MAX_SESSIONS_LISTED = 1000
Args = dict[str, list[str]]
CHUNK = 200  # entries looked at per reactor turn while a journal page is written
STATIC = {  # the live page: file, content type
    "/": ("index.html", b"text/html; charset=utf-8"),
    "/page/app.js": ("app.js", b"text/javascript; charset=utf-8"),
    "/page/app.css": ("app.css", b"text/css; charset=utf-8"),
    "/page/favicon.svg": ("favicon.svg", b"image/svg+xml"),
}
# the page loads nothing from elsewhere and may not be framed
PAGE_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ROUTES = {
    ("GET", "/health"),
    ("GET", "/scenarios"),
    ("GET", "/sessions"),
    ("POST", "/activate"),
    ("POST", "/reset"),
    ("GET", "/journal"),
    ("GET", "/journal/stream"),
    ("DELETE", "/journal"),
}


@cache
def _static(name: str) -> bytes:
    return resources.files("mock_radius").joinpath("web", name).read_bytes()


class ControlResource(Resource):
    isLeaf = True

    def __init__(
        self,
        protocol: MockRadiusProtocol,
        *,
        edge: Edge | None = None,
        sockets: Any = None,  # SocketReport: what /health says of the RADIUS sockets
    ) -> None:
        super().__init__()
        self.protocol = protocol
        self.edge = edge or Edge()
        self.stream = StreamHub(protocol.journal, protocol.reactor)
        self.sockets = sockets

    def render(self, request: Request) -> bytes | int:
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"no-store")
        method = (request.method or b"").decode("latin-1")
        path = (request.path or b"").decode("latin-1")
        path = path.rstrip("/") or "/"
        try:
            self.edge.check(request)
            if method == "GET" and path in STATIC:
                return self._page(request, path)
            if (method, path) not in ROUTES:
                known = {p for _, p in ROUTES} | set(STATIC)
                raise Refused(
                    HTTPStatus.METHOD_NOT_ALLOWED if path in known else HTTPStatus.NOT_FOUND,
                    f"no route {method} {path}",
                )
            if path == "/journal/stream":
                return self._stream(request)
            if (method, path) == ("GET", "/journal"):
                return self._journal_page(request)
            status, body = self._dispatch(method, path, request)
        except Refused as refused:
            request.setHeader(b"content-type", b"application/json")
            request.setResponseCode(refused.status.value)
            return refused.body()
        request.setHeader(b"content-type", b"application/json")
        request.setResponseCode(status)
        return json.dumps(body, default=str).encode()

    def _page(self, request: Request, path: str) -> bytes:
        name, kind = STATIC[path]
        request.setHeader(b"content-type", kind)
        request.setHeader(b"content-security-policy", PAGE_POLICY)
        return _static(name)

    # the journal

    def _query(self, request: Request, paging: dict[str, str]) -> tuple[JournalFilter, Args]:
        query = (request.uri or b"").partition(b"?")[2].decode("utf-8", "replace")
        args = parse_qs(query, keep_blank_values=False)
        try:
            return parse_filter(args, paging), args
        except FilterError as exc:
            raise Refused(HTTPStatus.BAD_REQUEST, str(exc)) from None

    def _stream(self, request: Request) -> int:
        wanted, args = self._query(request, {"since": "a sequence number"})
        if self.stream.full:
            raise Refused(HTTPStatus.SERVICE_UNAVAILABLE,
                          f"at most {self.stream.max_subscribers} streams at once")  # fmt: skip
        # a reconnecting EventSource says where it was: that wins over the URL's since
        resume = (request.getHeader(b"last-event-id") or b"").decode("latin-1").strip()
        given = {"since": [resume]} if resume else args
        since = _integer(given, "since", 0, 0, None) if given.get("since") else None
        request.setResponseCode(200)
        self.stream.subscribe(request, wanted, since)
        return NOT_DONE_YET

    def _journal_page(self, request: Request) -> int:
        wanted, args = self._query(request, {"since": "a sequence number",
                                             "limit": "entries per page"})  # fmt: skip
        since = _integer(args, "since", 0, 0, None)
        limit = _integer(args, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        journal = self.protocol.journal
        reactor = self.protocol.reactor
        request.setHeader(b"content-type", b"application/json")
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
                if not wanted.matches(entry):
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

    # the rest

    def _body(self, request: Request) -> dict[str, Any]:
        assert request.content is not None
        raw = request.content.read()  # at most control_guard.MAX_BODY octets
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise Refused(HTTPStatus.BAD_REQUEST, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise Refused(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return data

    def _dispatch(self, method: str, path: str, request: Request) -> tuple[int, Any]:
        engine = self.protocol.engine
        journal = self.protocol.journal
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
                "stream": self.stream.stats(),
                "sockets": {} if self.sockets is None else self.sockets(),
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
                        "script": s.summary(),
                    }
                    for s in engine.scenarios.values()
                ],
            }
        if path == "/sessions":
            query = (request.uri or b"").partition(b"?")[2].decode("utf-8", "replace")
            args = parse_qs(query)
            unknown = sorted(set(args) - {"limit"})
            if unknown:
                raise Refused(HTTPStatus.BAD_REQUEST,
                              f"unknown parameter {', '.join(unknown)} (known: limit)")  # fmt: skip
            limit = _integer(args, "limit", DEFAULT_SESSIONS, 1, MAX_SESSIONS_LISTED)
            return 200, {**engine.describe(),
                         **engine.live(self.protocol.reactor.seconds(), limit)}  # fmt: skip
        if path == "/activate":
            body = self._body(request)
            name, user = body.get("scenario"), body.get("user")
            if name is not None and not isinstance(name, str):
                raise Refused(HTTPStatus.BAD_REQUEST, "scenario must be a string or null")
            if user is not None and not isinstance(user, str):
                raise Refused(HTTPStatus.BAD_REQUEST, "user must be a string")
            if (
                user is not None
                and user not in engine.per_user
                and name is not None
                and (len(engine.per_user) >= MAX_PER_USER)
            ):
                raise Refused(HTTPStatus.BAD_REQUEST,
                              f"at most {MAX_PER_USER} per-user activations")  # fmt: skip
            try:
                engine.activate(name, user)
            except UnknownScenario:
                raise Refused(HTTPStatus.NOT_FOUND, f"no scenario named {name!r}") from None
            return 200, {"active": engine.active, "perUser": engine.per_user}
        if path == "/reset":
            user = self._body(request).get("user")
            if user is not None and not isinstance(user, str):
                raise Refused(HTTPStatus.BAD_REQUEST, "user must be a string")
            engine.reset(user)
            if user is None:
                self.protocol.reset()
            return 200, {"reset": user or "all"}
        journal.clear()  # DELETE /journal (GET is streamed by _journal_page)
        return 200, {"cleared": True}


def _integer(args: Args, name: str, default: int, low: int,
             high: int | None) -> int:  # fmt: skip
    raw = (args.get(name) or [""])[-1]
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Refused(HTTPStatus.BAD_REQUEST, f"{name} must be an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"from {low}" + (f" to {high}" if high is not None else "")
        raise Refused(HTTPStatus.BAD_REQUEST, f"{name} must be {bound}")
    return value
