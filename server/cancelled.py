# -*- test-case-name: tests.test_stopping -*-
"""A request cancelled by a forced stop still gets an answer in the contract's JSON shape.

uvicorn cancels the requests still running when the graceful stop runs out of time (SIGTERM
and a request longer than its 5 s, a Push waiting for the phone, say) and at once on a second
Ctrl-C; its own answer to a cancelled request is a plain-text ``500 Internal Server Error``.
This middleware, the outermost of the application, answers 503 ``unavailable`` instead when
no response has started, then lets the cancellation go on.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appgate_mfa_server import errors
from appgate_mfa_server.responses import send_json


class AnswerWhenCancelled:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_the_start(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, send_noting_the_start)
        except asyncio.CancelledError:
            if not started:
                error = errors.unavailable()
                await send_json(send, error.status, error.body())
            raise
