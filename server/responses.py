# -*- test-case-name: tests.test_errors, tests.test_openapi, tests.test_vendor_spec -*-
"""JSON responses in the contract's shapes: as Starlette responses (for the exception handlers
and the edge) and as two ASGI messages sent directly (for the route handlers); and the
exception handlers of every Starlette application of the server."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Send

from appgate_mfa_server import errors
from appgate_mfa_server.errors import ApiError

MEDIA_TYPE = "application/json"
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_JSON_HEADERS = [(b"content-type", MEDIA_TYPE.encode())]


def json_response(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def error_response(error: ApiError) -> JSONResponse:
    return json_response(error.body(), error.status)


def no_content() -> Response:
    return Response(status_code=204)


async def send_json(send: Send, status: int, body: dict[str, Any] | None) -> None:
    """``body`` None: an empty response (204)."""
    if body is None:
        headers: list[tuple[bytes, bytes]] = []
        data = b""
    else:
        data = _ENCODER.encode(body).encode()
        headers = [*_JSON_HEADERS, (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


Handler = Callable[[Request, Exception], Awaitable[Response]]


def exception_handlers(log: logging.Logger) -> dict[type[Exception] | int, Handler]:
    """Starlette's ``exception_handlers``: an ApiError in its own shape, Starlette's 404 and
    405 as the API's, anything else a 500 logged on ``log`` by type only (no trace, no
    secret)."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error_response(errors.not_found())
        if exc.status_code == 405:
            response = error_response(errors.method_not_allowed())
            response.headers.update(exc.headers or {})  # Allow, as RFC 9110 requires
            return response
        return error_response(errors.http_error(exc.status_code))

    async def unexpected(request: Request, exc: Exception) -> Response:
        fields = {"event": "unexpected_error", "type": type(exc).__name__}
        log.error("unexpected error", extra={"fields": fields})
        return error_response(errors.unexpected_error())

    return {ApiError: api_error, HTTPException: http_error, Exception: unexpected}
