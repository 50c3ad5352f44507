"""Reading what a client sent: a bounded JSON object body and a bearer token."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request

from server import errors


async def read_json_object(
    request: Request, limit: int, timeout: float = 10.0
) -> dict[str, Any] | None:
    """The body as a JSON object; None when there is no body at all.

    The size is checked before and while reading, so a huge or endless body costs at most
    ``limit`` bytes of memory; a body that trickles in slower than ``timeout`` is a 408.
    """
    headers = request.headers
    declared = headers.get("content-length")
    if declared is None and "transfer-encoding" not in headers:
        return None  # no body: nothing to wait for
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.payload_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise errors.payload_too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise errors.request_timeout() from None
    raw = b"".join(chunks)
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise errors.json_error("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise errors.json_error("The request body must be a JSON object.")
    return data


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
