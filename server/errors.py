"""Every failure the API can answer, as exceptions that know their status and JSON body.

The logic raises these; the HTTP layer only renders them, so the body shapes of the contract
live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass
class ApiError(Exception):
    status: int
    id: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "message": self.message, **self.extra}


def json_error(message: str) -> ApiError:
    return ApiError(400, "json error", message)


def token_error(message: str = "Token error. Login again.") -> ApiError:
    return ApiError(401, "token error", message)


def authentication_failed(reason: str, extra: dict[str, Any] | None = None) -> ApiError:
    return ApiError(
        401, "authentication failed", "Authentication failed.", {"reason": reason, **(extra or {})}
    )


def forbidden(message: str = "No administration rights.") -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(message: str = "The requested resource can not be found.") -> ApiError:
    return ApiError(404, "not found", message)


def method_not_allowed() -> ApiError:
    return ApiError(405, "method not allowed", "The method is not allowed on this route.")


def not_acceptable(received: str | None, min_version: int, max_version: int) -> ApiError:
    shown = "(none)" if received is None else received
    return ApiError(
        406,
        "not acceptable",
        f"Invalid 'Accept' header. Current version: application/vnd.appgate.peer-v{max_version}"
        f"+json, Received: {shown}",
        {"minSupportedVersion": min_version, "maxSupportedVersion": max_version},
    )


def request_timeout() -> ApiError:
    return ApiError(408, "request timeout", "The request body did not arrive in time.")


def mfa_required() -> ApiError:
    return ApiError(
        412, "mfa required", "Multi-factor authentication is required before authorization."
    )


def payload_too_large(limit: int) -> ApiError:
    return ApiError(413, "payload too large", f"The request body is larger than {limit} bytes.")


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, "unsupported media type", message)


def validation_error(errors: list[FieldError]) -> ApiError:
    return ApiError(
        422,
        "validation error",
        'Request validation error. Check "errors" array for details.',
        {"errors": [{"field": e.field, "message": e.message} for e in errors]},
    )


def unavailable() -> ApiError:
    return ApiError(503, "unavailable", "The server is starting or stopping.")


def unexpected_error() -> ApiError:
    return ApiError(500, "unexpected error", "Unexpected server side error.")
