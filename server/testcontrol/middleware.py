# -*- test-case-name: tests.test_test_control, tests.test_test_control_units -*-
"""The ASGI middleware that makes the server a test double: it answers /_test/ itself, applies
the scripted faults and journals every other request. It sits in front of everything else, so
a fault answers before the Accept check and the routes, as a broken network or proxy would.

It is only in the stack when test control is on; when it is off, nothing here runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import assert_never

from starlette.middleware import Middleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appgate_mfa_server.responses import MEDIA_TYPE, error_response
from appgate_mfa_server.testcontrol.connection import from_scope
from appgate_mfa_server.testcontrol.control import TestControl
from appgate_mfa_server.testcontrol.error_shapes import error_body
from appgate_mfa_server.testcontrol.faults import NO_BODY, ConnectionFault, Fault
from appgate_mfa_server.testcontrol.origins import refusal
from appgate_mfa_server.testcontrol.routes import PREFIX, control_app

log = logging.getLogger("mfa.testcontrol")
GARBAGE_BYTES = 256


def garbage() -> bytes:
    """Random bytes that cannot be taken for the start of an HTTP response."""
    data = bytearray(os.urandom(GARBAGE_BYTES))
    if data[:1] == b"H":
        data[0] ^= 0x80
    return bytes(data)


class TestControlMiddleware:
    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, app: ASGIApp, control: TestControl) -> None:
        self.app = app
        self.control = control
        self.routes = control_app(control)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(PREFIX) or path == PREFIX.rstrip("/"):
            refused = refusal(scope, self.control.hosts)
            if refused is not None:
                fields = {"event": "test_control_refused", "status": refused.status}
                log.warning("test control refused", extra={"fields": fields})
                await error_response(refused)(scope, receive, send)
                return
            await self.routes(scope, receive, send)
            return
        started = time.perf_counter()
        fault = self.control.faults.take(scope["method"], path)
        accept = _accept(scope)
        status: int | None = None
        recorded = False

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        def record() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self.control.journal.add(
                    time=self.control.clock(), method=scope["method"], path=path,
                    status=status, accept=accept,
                    fault=None if fault is None else fault.summary(),
                    ms=(time.perf_counter() - started) * 1000,
                )  # fmt: skip

        try:
            if fault is None:
                await self.app(scope, receive, send_and_note)
            else:
                await self._answer(fault, accept, scope, receive, send_and_note, record)
        finally:
            record()

    async def _answer(self, fault: Fault, accept: str | None, scope: Scope, receive: Receive,
                      send: Send, record: Callable[[], None]) -> None:  # fmt: skip
        log.info("test fault", extra={"fields": {"event": "test_fault", **fault.summary(),
                                                  "method": scope["method"],
                                                  "path": scope["path"]}})  # fmt: skip
        if fault.delay is not None:
            await asyncio.sleep(fault.delay)
        if fault.fault is not None:
            record()  # before the break: a client that sees it finds it in the journal
            await _break(fault.fault, scope)
        elif fault.status is None:
            await self.app(scope, receive, send)  # a delay alone: then the real answer
        else:
            await self._scripted(fault, fault.status, accept, scope, receive, send)

    async def _scripted(self, fault: Fault, status: int, accept: str | None, scope: Scope,
                        receive: Receive, send: Send) -> None:  # fmt: skip
        response: Response
        if status in NO_BODY:
            response = Response(status_code=status)
        else:
            body = fault.body
            if body is None:
                control = self.control
                body = error_body(status, accept=accept, versions=control.versions,
                                  body_limit=control.body_limit)  # fmt: skip
            response = JSONResponse(body, status, media_type=MEDIA_TYPE)
        response.headers.update(fault.headers)
        await response(scope, receive, send)


async def _break(kind: ConnectionFault, scope: Scope) -> None:
    connection = from_scope(scope)
    if connection is None:  # refused when the fault was added; an in-process server, say
        return
    match kind:
        case ConnectionFault.RESET:
            connection.abort()
        case ConnectionFault.GARBAGE:
            connection.write(garbage())
            connection.close()
        case ConnectionFault.EMPTY:
            connection.close()
        case _:
            assert_never(kind)
    await connection.closed()


def _accept(scope: Scope) -> str | None:
    raw = [value for name, value in scope["headers"] if name == b"accept"]
    return b", ".join(raw).decode("latin-1") if raw else None


def control_middleware(control: TestControl | None) -> list[Middleware]:
    """The middleware to put in front of the application's own, if test control is on."""
    return [] if control is None else [Middleware(TestControlMiddleware, control=control)]
