"""How a password travels: hidden in a User-Password (PAP, RFC 2865 section 5.2) or proved
by a CHAP-Password (RFC 2865 section 2.2 and 5.3, CHAP of RFC 1994)."""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

from radius_codec.codes import AUTHENTICATOR_LENGTH, CHAP_RESPONSE_LENGTH, PAP_MAX_LENGTH

_BLOCK = AUTHENTICATOR_LENGTH  # PAP works in blocks of the MD5's 16 octets


class AuthProtocol(StrEnum):
    """How an Access-Request carries its password (the names the configuration and the
    mock's journal use)."""

    PAP = "PAP"
    CHAP = "CHAP"


class PasswordTooLong(ValueError):
    """More than a User-Password carries (128 octets)."""


def _xor_pad(block: bytes, secret: bytes, last: bytes) -> bytes:
    pad = hashlib.md5(secret + last).digest()  # noqa: S324 - RFC 2865 defines it with MD5
    return (int.from_bytes(block, "big") ^ int.from_bytes(pad, "big")).to_bytes(_BLOCK, "big")


def pap_hide(clear: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """The User-Password octets for ``clear``: padded with zeros to a multiple of 16 (an empty
    password is one block), each block XORed with MD5(secret + the block before it)."""
    if len(clear) > PAP_MAX_LENGTH:
        raise PasswordTooLong(
            f"{len(clear)} octets, more than the {PAP_MAX_LENGTH} a User-Password carries"
        )
    padded = clear + bytes(-len(clear) % _BLOCK if clear else _BLOCK)
    hidden = bytearray()
    last = authenticator
    for start in range(0, len(padded), _BLOCK):
        last = _xor_pad(padded[start : start + _BLOCK], secret, last)
        hidden += last
    return bytes(hidden)


def pap_reveal(hidden: bytes, secret: bytes, authenticator: bytes) -> bytes | None:
    """The clear password (its zero padding removed), or None when ``hidden`` cannot be a
    User-Password (not 16 to 128 octets in whole blocks)."""
    if not _BLOCK <= len(hidden) <= PAP_MAX_LENGTH or len(hidden) % _BLOCK:
        return None
    clear = bytearray()
    last = authenticator
    for start in range(0, len(hidden), _BLOCK):
        block = hidden[start : start + _BLOCK]
        clear += _xor_pad(block, secret, last)
        last = block
    return bytes(clear).rstrip(b"\0")


def chap_response(chap_id: int, clear: bytes, challenge: bytes) -> bytes:
    """A CHAP-Password: the CHAP identifier, then MD5(identifier + password + challenge); the
    challenge is the CHAP-Challenge attribute, or else the Request Authenticator."""
    identifier = bytes((chap_id,))
    return identifier + hashlib.md5(identifier + clear + challenge).digest()  # noqa: S324


def chap_matches(challenge: bytes, response: bytes, clear: bytes) -> bool:
    """Does the CHAP-Password ``response`` prove ``clear``?"""
    return len(response) == CHAP_RESPONSE_LENGTH and hmac.compare_digest(
        chap_response(response[0], clear, challenge), response
    )
