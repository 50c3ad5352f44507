"""Every failure the API can answer, as exceptions that know their status and JSON body.

The logic raises these; the HTTP layer only renders them (the guarded protocol too, for what it
refuses before the application sees a request), so the status, id and message of each error of
the contract are written here and nowhere else.
"""

from __future__ import annotations

import http
from dataclasses import dataclass, field
from typing import Any, Literal


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


def bad_request() -> ApiError:
    """What the HTTP edge answers to bytes that are not an HTTP/1.1 request."""
    return ApiError(400, "bad request", "The request is not valid HTTP/1.1.")


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


def request_timeout(part: Literal["head", "body"] = "body") -> ApiError:
    return ApiError(408, "request timeout", f"The request {part} did not arrive in time.")


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def mfa_required() -> ApiError:
    return ApiError(
        412, "mfa required", "Multi-factor authentication is required before authorization."
    )


def payload_too_large(limit: int) -> ApiError:
    return ApiError(413, "payload too large", f"The request body is larger than {limit} bytes.")


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, "unsupported media type", message)


def header_too_large(limit: int) -> ApiError:
    return ApiError(
        431, "request header fields too large", f"The request head is larger than {limit} bytes."
    )


def validation_error(errors: list[FieldError]) -> ApiError:
    return ApiError(
        422,
        "validation error",
        'Request validation error. Check "errors" array for details.',
        {"errors": [{"field": e.field, "message": e.message} for e in errors]},
    )


def unexpected_error() -> ApiError:
    return ApiError(500, "unexpected error", "Unexpected server side error.")


def radius_invalid_response(
    message: str = "No answer of the RADIUS server could be verified.",
) -> ApiError:
    """RADIUS answered, but no answer verified; ``message`` names the hosts and why."""
    return ApiError(502, "radius invalid response", message)


def unavailable() -> ApiError:
    return ApiError(503, "unavailable", "The server is starting or stopping.")


def radius_timeout(message: str = "No RADIUS server answered in time.") -> ApiError:
    """No RADIUS server answered; ``message`` names the hosts tried."""
    return ApiError(504, "radius timeout", message)


def http_error(status: int) -> ApiError:
    """An HTTP error of the framework's that has no error of its own here."""
    return ApiError(status, "http error", "The request failed.")


def status_error(status: int) -> ApiError:
    """An error of a status this server never answers with itself (a scripted 429, say): its
    HTTP reason phrase, as an id and as a message."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        return http_error(status)
    return ApiError(status, phrase.lower(), f"{phrase}.")
