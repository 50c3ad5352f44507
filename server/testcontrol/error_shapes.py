# -*- test-case-name: tests.test_test_control_units -*-
"""The body a scripted status gets when the fault gives none: the error this server would
answer with that status, so a client's error handling meets the shapes it meets in production."""

from __future__ import annotations

from typing import Any

from appgate_mfa_server import errors

_OWN: dict[int, errors.ApiError] = {
    400: errors.json_error("The request body is not valid JSON."),
    401: errors.token_error(),
    403: errors.forbidden(),
    404: errors.not_found(),
    405: errors.method_not_allowed(),
    408: errors.request_timeout(),
    412: errors.mfa_required(),
    422: errors.validation_error([]),
    500: errors.unexpected_error(),
    502: errors.radius_invalid_response(),
    503: errors.unavailable(),
    504: errors.radius_timeout(),
}


def error_body(
    status: int, *, accept: str | None, versions: tuple[int, int], body_limit: int
) -> dict[str, Any]:
    """``{"id", "message", ...}`` for ``status``; ``accept`` and ``versions`` fill a 406 as the
    server's own does, ``body_limit`` a 413."""
    if status == 406:
        return errors.not_acceptable(accept, *versions).body()
    if status == 413:
        return errors.payload_too_large(body_limit).body()
    own = _OWN.get(status)
    return (own if own is not None else errors.status_error(status)).body()
