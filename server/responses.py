"""JSON responses in the contract's shapes: as Starlette responses (for the exception handlers
and the edge) and as two ASGI messages sent directly (for the route handlers)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Send

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
