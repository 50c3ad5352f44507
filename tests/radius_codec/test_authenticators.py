"""radius_codec/authenticators.py against the RFC formulas, computed here with hashlib and the
standard library's hmac (not the codec's cached pads), and against the published examples of
RFC 2865 section 7.1 and RFC 5997 section 6 (shared secret ``xyzzy5461``)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radius_codec import authenticators
from radius_codec.authenticators import (
    MaStatus,
    accounting_request_ok,
    hmac_md5,
    message_authenticator_status,
    response_authenticator_ok,
    sign_accounting_request,
    sign_reply,
    sign_request,
    verify_reply,
)
from radius_codec.codes import Code
from radius_codec.packet import parse

RFC_SECRET = b"xyzzy5461"
# RFC 2865 section 7.1: nemo's Access-Request (PAP, "arctangent") and its Access-Accept
RFC2865_REQUEST = bytes.fromhex(
    "010000380f403f9473978057bd83d5cb98f4227a01066e656d6f02120dbe708d93d413ce3196e43f782a0aee"
    "0406c0a80110050600000003"
)
RFC2865_ACCEPT = bytes.fromhex(
    "0200002686fe220e7624ba2a1005f6bf9b55e0b20606000000010f06000000000e06c0a80103"
)
# RFC 5997 section 6: Status-Server to the auth port and the Access-Accept, then to the
# accounting port and the Accounting-Response
RFC5997_STATUS = bytes.fromhex(
    "0cda00268a54f4686fb394c52866e302185d062350125a665e2e1e8411f3e243822097c84fa3"
)
RFC5997_ACCEPT = bytes.fromhex("02da0014ef0d552a4bf2d693ec2b6fe8b5411d66")
RFC5997_ACCT_STATUS = bytes.fromhex(
    "0cb30026925f6b66dd5fed571fcb1db7ad3882605012e8d6eabda910875cd91fdade26367858"
)
RFC5997_ACCT_RESPONSE = bytes.fromhex("05b300140f6f92145f107e2f504e860a4860669c")

SECRETS = st.binary(min_size=1, max_size=80)  # over 64 octets HMAC hashes the key first
ATTRIBUTES = st.lists(
    st.tuples(st.sampled_from([1, 18, 24, 33, 44]), st.binary(max_size=30)), max_size=6
).map(lambda pairs: b"".join(bytes((k, len(v) + 2)) + v for k, v in pairs))


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def rfc_hmac(secret: bytes, data: bytes) -> bytes:
    return hmac.new(secret, data, hashlib.md5).digest()


def test_the_rfc_examples_verify() -> None:
    request, accept = parse(RFC2865_REQUEST), parse(RFC2865_ACCEPT)
    assert verify_reply(accept, request.authenticator, RFC_SECRET)
    assert not verify_reply(accept, request.authenticator, b"xyzzy5462")
    status = parse(RFC5997_STATUS)
    assert message_authenticator_status(status, RFC_SECRET) is MaStatus.VALID
    assert message_authenticator_status(status, b"xyzzy5462") is MaStatus.INVALID
    assert verify_reply(parse(RFC5997_ACCEPT), status.authenticator, RFC_SECRET)
    acct = parse(RFC5997_ACCT_STATUS)  # a Status-Server: its own authenticator, not zeros
    assert message_authenticator_status(acct, RFC_SECRET) is MaStatus.VALID
    assert verify_reply(parse(RFC5997_ACCT_RESPONSE), acct.authenticator, RFC_SECRET)


def test_signing_reproduces_the_rfc_examples() -> None:
    request = parse(RFC2865_REQUEST)
    assert sign_reply(Code.ACCESS_ACCEPT, 0, request.authenticator, RFC2865_ACCEPT[20:],
                      RFC_SECRET, message_authenticator=False) == RFC2865_ACCEPT  # fmt: skip
    status = parse(RFC5997_STATUS)
    assert sign_request(0xDA, status.authenticator, b"", RFC_SECRET,
                        code=Code.STATUS_SERVER) == RFC5997_STATUS  # fmt: skip
    assert sign_reply(Code.ACCESS_ACCEPT, 0xDA, status.authenticator, b"", RFC_SECRET,
                      message_authenticator=False) == RFC5997_ACCEPT  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(SECRETS, st.binary(max_size=300))
def test_hmac_md5_with_cached_pads_is_hmac_md5(secret: bytes, message: bytes) -> None:
    assert hmac_md5(secret, message) == rfc_hmac(secret, message)
    assert hmac_md5(secret, message) == rfc_hmac(secret, message)  # from the cache


@pytest.mark.parametrize("length", [63, 64, 65])
def test_hmac_md5_at_the_block_size(length: int) -> None:
    """RFC 2104: a key of up to 64 octets is used as it is, a longer one hashed first."""
    secret = bytes(range(length))
    assert hmac_md5(secret, b"message") == rfc_hmac(secret, b"message")


def test_the_cache_of_pads_is_bounded() -> None:
    """A secret per scenario, and the recorder's: few; but the cache must not grow forever."""
    authenticators._PADS.clear()
    hmac_md5(b"one", b"m")
    assert list(authenticators._PADS) == [b"one"]
    for n in range(authenticators._MAX_CACHED_SECRETS + 10):
        assert hmac_md5(b"%d" % n, b"m") == rfc_hmac(b"%d" % n, b"m")
    assert len(authenticators._PADS) == authenticators._MAX_CACHED_SECRETS


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE]),
       st.integers(0, 255), st.binary(min_size=16, max_size=16), ATTRIBUTES, SECRETS,
       st.booleans())  # fmt: skip
def test_a_reply_by_the_rfc_formulas(
    code: Code, ident: int, request_auth: bytes, attributes: bytes, secret: bytes, ma: bool
) -> None:
    """RFC 2865 section 3: Response Authenticator = MD5(Code + Identifier + Length + Request
    Authenticator + Attributes + Secret); RFC 3579 section 3.2: the Message-Authenticator,
    computed first, is HMAC-MD5 over the reply with the Request Authenticator in the
    Authenticator field and its own value zeroed."""
    raw = sign_reply(code, ident, request_auth, attributes, secret, message_authenticator=ma)
    length = 20 + len(attributes) + (18 if ma else 0)
    head = bytes((code, ident)) + length.to_bytes(2, "big")
    assert len(raw) == length and raw[:4] == head
    body = attributes
    if ma:
        assert raw[20:22] == b"\x50\x12"  # the first attribute
        mac = rfc_hmac(secret, head + request_auth + b"\x50\x12" + bytes(16) + attributes)
        assert raw[22:38] == mac
        body = b"\x50\x12" + mac + attributes
    assert raw[20:] == body
    assert raw[4:20] == md5(head + request_auth + body + secret)
    reply = parse(raw)
    assert verify_reply(reply, request_auth, secret)
    assert response_authenticator_ok(reply, request_auth, secret)
    expected = MaStatus.VALID if ma else MaStatus.ABSENT
    assert message_authenticator_status(reply, secret, request_auth) is expected
    assert not verify_reply(reply, request_auth, secret + b"x")
    assert not verify_reply(reply, bytes(16) if request_auth != bytes(16) else b"\1" * 16, secret)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), st.binary(min_size=16, max_size=16), ATTRIBUTES, SECRETS,
       st.booleans())  # fmt: skip
def test_an_access_request_by_the_rfc_formula(
    ident: int, authenticator: bytes, attributes: bytes, secret: bytes, ma: bool
) -> None:
    """RFC 3579 section 3.2: in an Access-Request, HMAC-MD5 over the packet as sent, the
    Message-Authenticator's value zeroed."""
    raw = sign_request(ident, authenticator, attributes, secret, message_authenticator=ma)
    length = 20 + len(attributes) + (18 if ma else 0)
    head = bytes((Code.ACCESS_REQUEST, ident)) + length.to_bytes(2, "big")
    if not ma:
        assert raw == head + authenticator + attributes
        assert message_authenticator_status(parse(raw), secret) is MaStatus.ABSENT
        return
    mac = rfc_hmac(secret, head + authenticator + b"\x50\x12" + bytes(16) + attributes)
    assert raw == head + authenticator + b"\x50\x12" + mac + attributes
    assert message_authenticator_status(parse(raw), secret) is MaStatus.VALID
    assert message_authenticator_status(parse(raw), secret + b"x") is MaStatus.INVALID
    tampered = bytearray(raw)
    tampered[4] ^= 1  # the Request Authenticator is covered too
    assert message_authenticator_status(parse(bytes(tampered)), secret) is MaStatus.INVALID


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), ATTRIBUTES, SECRETS, st.booleans())
def test_an_accounting_request_by_the_rfc_formula(
    ident: int, attributes: bytes, secret: bytes, ma: bool
) -> None:
    """RFC 2866 section 3: Request Authenticator = MD5(Code + Identifier + Length + 16 zero
    octets + Attributes + Secret); a Message-Authenticator, computed first, over the same 16
    zero octets."""
    raw = sign_accounting_request(ident, attributes, secret, message_authenticator=ma)
    length = 20 + len(attributes) + (18 if ma else 0)
    head = bytes((Code.ACCOUNTING_REQUEST, ident)) + length.to_bytes(2, "big")
    body = attributes
    if ma:
        mac = rfc_hmac(secret, head + bytes(16) + b"\x50\x12" + bytes(16) + attributes)
        body = b"\x50\x12" + mac + attributes
    assert raw == head + md5(head + bytes(16) + body + secret) + body
    packet = parse(raw)
    assert accounting_request_ok(packet, secret)
    assert not accounting_request_ok(packet, secret + b"x")
    expected = MaStatus.VALID if ma else MaStatus.ABSENT
    assert message_authenticator_status(packet, secret) is expected


def test_a_reply_with_its_message_authenticator_spoiled_fails_on_that_alone() -> None:
    request_auth = bytes(range(16))
    raw = bytearray(sign_reply(Code.ACCESS_ACCEPT, 1, request_auth, b"\x12\x04hi", b"s",
                               message_authenticator=True))  # fmt: skip
    raw[30] ^= 1
    raw[4:20] = md5(bytes(raw[:4]) + request_auth + bytes(raw[20:]) + b"s")  # re-signed
    reply = parse(bytes(raw))
    assert response_authenticator_ok(reply, request_auth, b"s")
    assert message_authenticator_status(reply, b"s", request_auth) is MaStatus.INVALID
    assert not verify_reply(reply, request_auth, b"s")
