# -*- test-case-name: tests.test_errors, tests.test_openapi, tests.test_vendor_spec -*-
"""Request bodies, validated strictly: an empty string or a null is an error, never "absent"."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from appgate_mfa_server.errors import FieldError, validation_error

NonEmpty = Annotated[StrictStr, Field(min_length=1, max_length=4096)]


def _refuse_null(value: object) -> object:
    """Optional fields may be absent, but an explicit null is a wrong type, not "absent"."""
    if value is None:
        raise ValueError("must be a string")
    return value


class RequestBody(BaseModel):
    """The base of every JSON body a route reads (test control's too), parsed by
    ``parse_body``. Clients of other versions may send fields we do not know: they are ignored,
    not errors (a model that must refuse them says ``extra="forbid"``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class LoginRequest(RequestBody):
    providerName: NonEmpty
    deviceId: NonEmpty
    username: NonEmpty
    password: NonEmpty

    @field_validator("deviceId")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            uuid.UUID(value)
        except ValueError:
            raise ValueError("must be a UUID") from None
        return value


class InitializeRequest(RequestBody):
    userPassword: NonEmpty | None = None

    @field_validator("userPassword", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        return _refuse_null(value)


class OtpRequest(RequestBody):
    otp: NonEmpty
    state: NonEmpty | None = None

    @field_validator("state", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        return _refuse_null(value)


NO_INITIALIZE_BODY = InitializeRequest()

_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long",
}

Model = TypeVar("Model", bound=RequestBody)


def _field_errors(error: ValidationError) -> list[FieldError]:
    found: list[FieldError] = []
    for item in error.errors(include_url=False):
        name = ".".join(str(part) for part in item["loc"]) or "(body)"
        message = _MESSAGES.get(item["type"])
        if message is None:
            message = str(item["msg"]).removeprefix("Value error, ")
        found.append(FieldError(name, message))
    return found


def parse_body(model: type[Model], data: dict[str, Any] | None) -> Model:
    """The validated body, or the contract's 422 naming every wrong field."""
    if data is None and model is InitializeRequest:  # the usual initialize: no body at all
        return NO_INITIALIZE_BODY  # type: ignore[return-value]
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise validation_error(_field_errors(exc)) from None
