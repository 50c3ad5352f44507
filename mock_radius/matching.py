"""Does a request fit a step? Every failed condition is named, for the near-miss hint."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mock_radius.scenario import Match, Presence, Regex

AttributeValues = dict[str, list[str | int | bytes]]


@dataclass(frozen=True)
class RequestView:
    """What the engine needs of a decoded Access-Request, with no packet library in sight."""

    user_name: str | None
    state: bytes | None = None
    message_authenticator: bool = False
    attributes: AttributeValues = field(default_factory=dict)
    password_matches: Callable[[str], bool] = lambda _clear: False
    auth_type: str | None = None  # "PAP", "CHAP" or None
    clear_password: str | None = None  # PAP only: CHAP never reveals it


def _value_matches(expected: str | int | Regex | Presence, values: list[str | int | bytes]) -> bool:
    if isinstance(expected, Presence):
        return expected.present == bool(values)
    if isinstance(expected, Regex):
        pattern = re.compile(expected.regex)
        return any(pattern.fullmatch(_text(v)) for v in values)
    if isinstance(expected, int):
        return any(v == expected for v in values)
    return any(_text(v) == expected for v in values)


def _text(value: str | int | bytes) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def hash_password(clear: str, salt: bytes) -> str:
    digest = hashlib.sha256(salt + clear.encode("utf-8")).hexdigest()
    return f"sha256:{salt.hex()}:{digest}"


def hashed_password_matches(stored: str, clear: str | None) -> bool:
    if clear is None:
        return False
    _scheme, salt, _digest = stored.split(":")
    return hmac.compare_digest(hash_password(clear, bytes.fromhex(salt)), stored)


def failed_conditions(match: Match, request: RequestView, issued_state: bytes | None) -> list[str]:
    failed: list[str] = []
    if match.user_name is not None:
        name = request.user_name or ""
        if isinstance(match.user_name, Regex):
            ok = re.fullmatch(match.user_name.regex, name) is not None
        else:
            ok = name == match.user_name
        if not ok:
            failed.append("userName")
    if match.password is not None and not request.password_matches(match.password):
        failed.append("password")
    if match.password_hash is not None and not hashed_password_matches(
        match.password_hash, request.clear_password
    ):
        failed.append("passwordHash")
    if match.state == "absent" and request.state is not None:
        failed.append("state (expected none)")
    if match.state == "issued" and (
        request.state is None
        or issued_state is None
        or not hmac.compare_digest(request.state, issued_state)
    ):
        failed.append("state (expected the one issued)")
    for name, expected in match.attributes.items():
        if not _value_matches(expected, request.attributes.get(name, [])):
            failed.append(f"attribute {name}")
    if (
        match.message_authenticator is not None
        and match.message_authenticator != request.message_authenticator
    ):
        failed.append("messageAuthenticator")
    return failed
