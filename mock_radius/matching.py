# -*- test-case-name: tests.test_mock_engine, tests.test_mock_units -*-
"""Does a request (its ``RequestView``) fit a step? Every failed condition is named, for the
near-miss hint."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Sequence

from mock_radius.request_view import RequestView
from mock_radius.scenario import AccountingMatch, Match, Presence, Regex
from radius_codec.dictionary import Value, code_of, decode_value, encode_value


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


Check = Callable[[RequestView, "bytes | None"], "str | None"]


class Matcher:
    """A step's conditions compiled once: only the conditions the step has are checked."""

    __slots__ = ("checks",)

    def __init__(self, match: Match | AccountingMatch) -> None:
        checks: list[Check] = []
        if match.user_name is not None:
            checks.append(_user_check(match.user_name))
        if isinstance(match, Match):
            checks += _access_checks(match)
        for name, expected in match.attributes.items():
            checks.append(_attribute_check(name, expected))
        if isinstance(match, Match) and match.message_authenticator is not None:
            checks.append(_ma_check(match.message_authenticator))
        self.checks = tuple(checks)

    def failed(self, request: RequestView, issued_state: bytes | None = None) -> list[str]:
        if not self.checks:
            return []
        found = [check(request, issued_state) for check in self.checks]
        return [label for label in found if label is not None]


def _user_check(expected: str | Regex) -> Check:
    if isinstance(expected, Regex):
        pattern = re.compile(expected.regex)
        return lambda r, _s: None if pattern.fullmatch(r.user_name or "") else "userName"
    return lambda r, _s: None if (r.user_name or "") == expected else "userName"


def _attribute_check(name: str, expected: str | int | Regex | Presence) -> Check:
    label = f"attribute {name}"
    if isinstance(expected, int):  # a number the dictionary names is decoded as its name
        try:
            named = decode_value(code_of(name), encode_value(name, expected))
        except ValueError:  # not a number this attribute can hold: it never matches
            named = expected
        expected = named if isinstance(named, str) else expected
    return lambda r, _s: None if _value_matches(expected, r.attributes.get(name, ())) else label


def _access_checks(match: Match) -> list[Check]:
    checks: list[Check] = []
    passwords = match.passwords()
    if passwords:
        checks.append(
            lambda r, _s: None if any(r.password_matches(p) for p in passwords) else "password"
        )
    wrong = match.wrong_passwords()
    if wrong:
        checks.append(
            lambda r, _s: (
                None
                if r.auth_type is not None and not any(r.password_matches(p) for p in wrong)
                else "notPassword"
            )
        )
    stored = match.password_hash
    if stored is not None:
        checks.append(
            lambda r, _s: (
                None if hashed_password_matches(stored, r.clear_password) else "passwordHash"
            )
        )
    if match.chap is not None:
        wanted = (bytes.fromhex(match.chap.challenge), bytes.fromhex(match.chap.response))
        checks.append(lambda r, _s: None if r.chap == wanted else "chap")
    if match.state == "absent":
        checks.append(lambda r, _s: None if r.state is None else "state (expected none)")
    elif match.state == "issued":
        checks.append(_issued)
    return checks


def _ma_check(wanted: bool) -> Check:
    return lambda r, _s: None if r.message_authenticator == wanted else "messageAuthenticator"


def _issued(request: RequestView, issued_state: bytes | None) -> str | None:
    if (
        request.state is None
        or issued_state is None
        or not hmac.compare_digest(request.state, issued_state)
    ):
        return "state (expected the one issued)"
    return None
