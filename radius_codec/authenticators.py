"""The authenticators of RADIUS, computed and checked: the Response Authenticator (RFC 2865
section 3), the Accounting Request Authenticator (RFC 2866 section 3) and the
Message-Authenticator (RFC 3579 section 3.2, RFC 5997); and packets signed with them.

The Message-Authenticator is HMAC-MD5, keyed with the shared secret, over the packet with its
own 16 octets zeroed and, in the Authenticator field, what the packet's kind says: the
packet's own Request Authenticator (Access-Request, Status-Server), 16 zero octets
(Accounting-Request) or the Request Authenticator of the request answered (replies).
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from typing import Any

from radius_codec.codes import (
    AUTHENTICATOR_LENGTH,
    HEADER_LENGTH,
    MESSAGE_AUTHENTICATOR_LENGTH,
    Attr,
    Code,
)
from radius_codec.packet import Packet, header

ZERO_AUTHENTICATOR = bytes(AUTHENTICATOR_LENGTH)
_MA_LENGTH = MESSAGE_AUTHENTICATOR_LENGTH
_MA_HEAD = bytes((Attr.MESSAGE_AUTHENTICATOR, _MA_LENGTH))
_MA_PLACEHOLDER = _MA_HEAD + ZERO_AUTHENTICATOR
_ACCOUNTING_REQUEST = int(Code.ACCOUNTING_REQUEST)
_MAX_CACHED_SECRETS = 1024


class MaStatus(StrEnum):
    """What a packet's Message-Authenticator says (the journal shows the value)."""

    ABSENT = "absent"
    VALID = "valid"
    INVALID = "invalid"


# the members as module names: on the per-packet path an enum class's attribute costs ~70 ns
_ABSENT, _VALID, _INVALID = MaStatus.ABSENT, MaStatus.VALID, MaStatus.INVALID

# HMAC-MD5 (RFC 2104) with the keyed pads hashed once per secret: hmac.digest sets up an
# OpenSSL HMAC context per call, which costs four times as much as the two hashes themselves.
_PADS: dict[bytes, tuple[Any, Any]] = {}


def hmac_md5(secret: bytes, message: bytes) -> bytes:
    pads = _PADS.get(secret)
    if pads is None:
        key = hashlib.md5(secret).digest() if len(secret) > 64 else secret  # noqa: S324
        key = key.ljust(64, b"\0")
        pads = (
            hashlib.md5(bytes(b ^ 0x36 for b in key)),  # noqa: S324 - RFC 3579 uses HMAC-MD5
            hashlib.md5(bytes(b ^ 0x5C for b in key)),  # noqa: S324
        )
        if len(_PADS) < _MAX_CACHED_SECRETS:
            _PADS[secret] = pads
    inner = pads[0].copy()
    inner.update(message)
    outer = pads[1].copy()
    outer.update(inner.digest())
    return bytes(outer.digest())


def response_authenticator(
    head: bytes, request_authenticator: bytes, attributes: bytes, secret: bytes
) -> bytes:
    """MD5(Code + Identifier + Length + Request Authenticator + Attributes + Secret): a reply's
    Response Authenticator; with 16 zero octets for the Request Authenticator, an
    Accounting-Request's own."""
    return hashlib.md5(  # noqa: S324 - RADIUS defines its authenticators with MD5
        head + request_authenticator + attributes + secret
    ).digest()


def message_authenticator_status(
    packet: Packet, secret: bytes, vector: bytes | None = None
) -> MaStatus:
    """Check the Message-Authenticator; ``vector`` is the Request Authenticator of the request
    a reply answers (None: ``packet`` is a request, the vector follows from its code)."""
    offset = packet.ma_offset
    if offset < 0:
        return _ABSENT
    raw = packet.raw
    if vector is None:
        vector = ZERO_AUTHENTICATOR if packet.code == _ACCOUNTING_REQUEST else packet.authenticator
    end = offset + _MA_LENGTH
    signed = raw[:4] + vector + raw[HEADER_LENGTH : offset + 2] + ZERO_AUTHENTICATOR + raw[end:]
    valid = hmac.compare_digest(hmac_md5(secret, signed), raw[offset + 2 : end])
    return _VALID if valid else _INVALID


def accounting_request_ok(packet: Packet, secret: bytes) -> bool:
    """The Request Authenticator of an Accounting-Request (RFC 2866 section 3)."""
    return response_authenticator_ok(packet, ZERO_AUTHENTICATOR, secret)  # the same MD5


def response_authenticator_ok(reply: Packet, request_authenticator: bytes, secret: bytes) -> bool:
    raw = reply.raw
    expected = response_authenticator(raw[:4], request_authenticator, raw[HEADER_LENGTH:], secret)
    return hmac.compare_digest(expected, reply.authenticator)


def verify_reply(reply: Packet, request_authenticator: bytes, secret: bytes) -> bool:
    """The Response Authenticator and, if there is one, the Message-Authenticator of a reply
    to the request with ``request_authenticator``."""
    return response_authenticator_ok(reply, request_authenticator, secret) and (
        message_authenticator_status(reply, secret, request_authenticator) is not _INVALID
    )


# signing


def sign_request(
    identifier: int,
    authenticator: bytes,
    attributes: bytes,
    secret: bytes,
    *,
    code: int = Code.ACCESS_REQUEST,
    message_authenticator: bool = True,
) -> bytes:
    """An Access-Request (or Status-Server) with a Message-Authenticator as its first
    attribute (as RFC 3579 and the BlastRADIUS advice put it), or none when asked."""
    length = HEADER_LENGTH + (_MA_LENGTH if message_authenticator else 0) + len(attributes)
    head = header(code, identifier, length)
    if not message_authenticator:
        return head + authenticator + attributes
    mac = hmac_md5(secret, head + authenticator + _MA_PLACEHOLDER + attributes)
    return head + authenticator + _MA_HEAD + mac + attributes


def sign_accounting_request(
    identifier: int, attributes: bytes, secret: bytes, *, message_authenticator: bool
) -> bytes:
    """An Accounting-Request: the Message-Authenticator (when asked) over 16 zero octets in
    the Authenticator field, then the Request Authenticator over the result (RFC 2866): signed
    as a reply to a request whose authenticator is those zeros."""
    return sign_reply(_ACCOUNTING_REQUEST, identifier, ZERO_AUTHENTICATOR, attributes, secret,
                      message_authenticator=message_authenticator)  # fmt: skip


def sign_reply(
    code: int,
    identifier: int,
    request_authenticator: bytes,
    attributes: bytes,
    secret: bytes,
    *,
    message_authenticator: bool,
) -> bytes:
    """A reply: the Message-Authenticator first (when asked), then the Response
    Authenticator over the whole."""
    length = HEADER_LENGTH + len(attributes) + (_MA_LENGTH if message_authenticator else 0)
    head = header(code, identifier, length)
    if message_authenticator:
        mac = hmac_md5(secret, head + request_authenticator + _MA_PLACEHOLDER + attributes)
        attributes = _MA_HEAD + mac + attributes
    return (
        head + response_authenticator(head, request_authenticator, attributes, secret) + attributes
    )
