# -*- test-case-name: tests.test_mock_faults -*-
"""The faults a scenario step may script, each breaking exactly one thing of a signed reply;
what is not broken on purpose is signed again, so a client is refused for the one reason."""

from __future__ import annotations

from enum import StrEnum

from radius_codec.authenticators import ZERO_AUTHENTICATOR, hmac_md5, response_authenticator
from radius_codec.codes import HEADER_LENGTH, MESSAGE_AUTHENTICATOR_LENGTH, Attr

_MA = int(Attr.MESSAGE_AUTHENTICATOR)
_FIRST_MA_VALUE = slice(HEADER_LENGTH + 2, HEADER_LENGTH + 6)  # some octets of the first one


class Fault(StrEnum):
    """The reply broken on purpose in exactly one way, for testing clients (docs/scenarios.md,
    Faults, says how each is broken)."""

    BAD_RESPONSE_AUTHENTICATOR = "bad-response-authenticator"
    NO_MESSAGE_AUTHENTICATOR = "no-message-authenticator"
    BAD_MESSAGE_AUTHENTICATOR = "bad-message-authenticator"
    WRONG_IDENTIFIER = "wrong-identifier"
    TRUNCATED = "truncated"
    MALFORMED = "malformed"
    DUPLICATE = "duplicate"


def resign(raw: bytes, request_authenticator: bytes, secret: bytes, *, fix_ma: bool) -> bytes:
    """Recompute the Length, the Message-Authenticator (when ``fix_ma``) and the Response
    Authenticator of a reply whose octets were changed."""
    data = bytearray(raw)
    data[2:4] = len(data).to_bytes(2, "big")
    if fix_ma:
        offset = HEADER_LENGTH
        while offset + 2 <= len(data):
            kind, length = data[offset], data[offset + 1]
            if length < 2:
                break
            if kind == _MA and length == MESSAGE_AUTHENTICATOR_LENGTH:
                value = slice(offset + 2, offset + MESSAGE_AUTHENTICATOR_LENGTH)
                data[value] = ZERO_AUTHENTICATOR
                zeroed = bytes(data[:4]) + request_authenticator + bytes(data[HEADER_LENGTH:])
                data[value] = hmac_md5(secret, zeroed)
                break
            offset += length
    attributes = bytes(data[HEADER_LENGTH:])
    data[4:HEADER_LENGTH] = response_authenticator(
        bytes(data[:4]), request_authenticator, attributes, secret
    )
    return bytes(data)


def _flip(data: bytearray, where: slice) -> None:
    for index in range(*where.indices(len(data))):
        data[index] ^= 0xFF


def apply_fault(
    raw: bytes, request_authenticator: bytes, secret: bytes, fault: Fault | None
) -> list[bytes]:
    """The datagrams to send for the signed reply ``raw``: one, or two for ``duplicate``.
    ``no-message-authenticator`` is no change here: the reply is signed without one."""
    if fault is None:
        return [raw]
    data = bytearray(raw)
    if fault is Fault.BAD_RESPONSE_AUTHENTICATOR:
        _flip(data, slice(4, 8))
        raw = bytes(data)
    elif fault is Fault.BAD_MESSAGE_AUTHENTICATOR:
        _flip(data, _FIRST_MA_VALUE)  # the Message-Authenticator is the first attribute
        raw = resign(bytes(data), request_authenticator, secret, fix_ma=False)
    elif fault is Fault.WRONG_IDENTIFIER:
        data[1] = (data[1] + 1) % 256
        raw = resign(bytes(data), request_authenticator, secret, fix_ma=True)
    elif fault is Fault.TRUNCATED:
        raw = raw[: max(HEADER_LENGTH, len(raw) - 7)]  # the Length field still claims it all
        if len(raw) == HEADER_LENGTH:
            raw = raw[:12]
    elif fault is Fault.MALFORMED:
        data += bytes([18, 1])  # an attribute whose length (1) is shorter than its header
        raw = resign(bytes(data), request_authenticator, secret, fix_ma=True)
    elif fault is Fault.DUPLICATE:
        return [raw, raw]
    return [raw]
