"""Does a request fit a step? Every failed condition is named, for the near-miss hint."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence

from mock_radius.scenario import AccountingMatch, Match, Presence, Regex

Value = str | int | bytes
EMPTY: Mapping[str, Sequence[Value]] = {}


def _never(_clear: str) -> bool:
    return False


def _nothing() -> str | None:
    return None


class RequestView:
    """What the engine needs of a request, with no wire format in sight. Expensive parts
    (decoded attributes, the revealed PAP password) are computed only when a step asks."""

    __slots__ = (
        "_clear",
        "attributes",
        "auth_type",
        "chap",
        "message_authenticator",
        "password_matches",
        "state",
        "user_name",
    )

    def __init__(
        self,
        user_name: str | None,
        state: bytes | None = None,
        message_authenticator: bool = False,
        attributes: Mapping[str, Sequence[Value]] = EMPTY,
        password_matches: Callable[[str], bool] = _never,
        auth_type: str | None = None,  # "PAP", "CHAP" or None
        clear_password: Callable[[], str | None] = _nothing,  # PAP only: CHAP never reveals it
        chap: tuple[bytes, bytes] | None = None,  # (challenge, CHAP-Password)
    ) -> None:
        self.user_name = user_name
        self.state = state
        self.message_authenticator = message_authenticator
        self.attributes = attributes
        self.password_matches = password_matches
        self.auth_type = auth_type
        self._clear = clear_password
        self.chap = chap

    @property
    def clear_password(self) -> str | None:
        return self._clear()


def _value_matches(expected: str | int | Regex | Presence, values: Sequence[Value]) -> bool:
    if isinstance(expected, Presence):
        return expected.present == bool(values)
    if isinstance(expected, Regex):
        pattern = re.compile(expected.regex)
        return any(pattern.fullmatch(_text(v)) for v in values)
    if isinstance(expected, int):
        return any(v == expected for v in values)
    return any(_text(v) == expected for v in values)


def _text(value: Value) -> str:
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


def _user_fails(expected: str | Regex | None, request: RequestView) -> bool:
    if expected is None:
        return False
    name = request.user_name or ""
    if isinstance(expected, Regex):
        return re.fullmatch(expected.regex, name) is None
    return name != expected


def _attributes_failing(
    expected: Mapping[str, str | int | Regex | Presence], request: RequestView
) -> list[str]:
    return [
        f"attribute {name}"
        for name, wanted in expected.items()
        if not _value_matches(wanted, request.attributes.get(name, ()))
    ]


def failed_conditions(match: Match, request: RequestView, issued_state: bytes | None) -> list[str]:
    failed: list[str] = []
    if _user_fails(match.user_name, request):
        failed.append("userName")
    passwords = match.passwords()
    if passwords and not any(request.password_matches(p) for p in passwords):
        failed.append("password")
    if match.password_hash is not None and not hashed_password_matches(
        match.password_hash, request.clear_password
    ):
        failed.append("passwordHash")
    if match.chap is not None and (
        request.chap is None
        or request.chap[0].hex() != match.chap.challenge.lower()
        or request.chap[1].hex() != match.chap.response.lower()
    ):
        failed.append("chap")
    if match.state == "absent" and request.state is not None:
        failed.append("state (expected none)")
    if match.state == "issued" and (
        request.state is None
        or issued_state is None
        or not hmac.compare_digest(request.state, issued_state)
    ):
        failed.append("state (expected the one issued)")
    failed += _attributes_failing(match.attributes, request)
    if (
        match.message_authenticator is not None
        and match.message_authenticator != request.message_authenticator
    ):
        failed.append("messageAuthenticator")
    return failed


def failed_accounting_conditions(match: AccountingMatch, request: RequestView) -> list[str]:
    failed = ["userName"] if _user_fails(match.user_name, request) else []
    return failed + _attributes_failing(match.attributes, request)
