"""JSON responses in the contract's shapes."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from server.errors import ApiError

MEDIA_TYPE = "application/json"


def json_response(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def error_response(error: ApiError) -> JSONResponse:
    return json_response(error.body(), error.status)


def no_content() -> Response:
    return Response(status_code=204)
