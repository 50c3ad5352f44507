"""radius_codec/passwords.py: PAP (RFC 2865 section 5.2) by its formula written here, at the
lengths that matter, with the RFC's own example; CHAP (RFC 2865 section 2.2, RFC 1994)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radius_codec.codes import PAP_MAX_LENGTH
from radius_codec.passwords import (
    PasswordTooLong,
    chap_matches,
    chap_response,
    pap_hide,
    pap_reveal,
)

SECRET = b"shared"
AUTHENTICATOR = bytes(range(100, 116))


def rfc_pap(clear: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """c(1) = p(1) xor MD5(S + RA), c(i) = p(i) xor MD5(S + c(i-1)); p padded with nulls to a
    multiple of 16 octets, at least one block."""
    padded = clear + bytes(16 - len(clear) % 16 if len(clear) % 16 or not clear else 0)
    out, previous = b"", authenticator
    for i in range(0, len(padded), 16):
        pad = hashlib.md5(secret + previous).digest()
        previous = bytes(a ^ b for a, b in zip(padded[i : i + 16], pad, strict=True))
        out += previous
    return out


@pytest.mark.parametrize(("length", "hidden_length"), [(0, 16), (16, 16), (17, 32), (128, 128)])
def test_pap_at_the_lengths_that_matter(length: int, hidden_length: int) -> None:
    clear = bytes(65 + i % 26 for i in range(length))
    hidden = pap_hide(clear, SECRET, AUTHENTICATOR)
    assert hidden == rfc_pap(clear, SECRET, AUTHENTICATOR)
    assert len(hidden) == hidden_length
    assert pap_reveal(hidden, SECRET, AUTHENTICATOR) == clear


def test_pap_refuses_more_than_128_octets() -> None:
    with pytest.raises(PasswordTooLong, match="129 octets, more than the 128 a User-Password"):
        pap_hide(bytes(PAP_MAX_LENGTH + 1), SECRET, AUTHENTICATOR)


def test_the_rfc_2865_example() -> None:
    """Section 7.1: nemo's "arctangent" with the secret xyzzy5461."""
    authenticator = bytes.fromhex("0f403f9473978057bd83d5cb98f4227a")
    hidden = bytes.fromhex("0dbe708d93d413ce3196e43f782a0aee")
    assert pap_hide(b"arctangent", b"xyzzy5461", authenticator) == hidden
    assert pap_reveal(hidden, b"xyzzy5461", authenticator) == b"arctangent"


@pytest.mark.parametrize("length", [0, 15, 17, 144])
def test_what_cannot_be_a_user_password_reveals_nothing(length: int) -> None:
    assert pap_reveal(bytes(length), SECRET, AUTHENTICATOR) is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=PAP_MAX_LENGTH).map(lambda b: b.rstrip(b"\0")),
       st.binary(min_size=1, max_size=40), st.binary(min_size=16, max_size=16))  # fmt: skip
def test_pap_round_trips(clear: bytes, secret: bytes, authenticator: bytes) -> None:
    hidden = pap_hide(clear, secret, authenticator)
    assert hidden == rfc_pap(clear, secret, authenticator)
    assert pap_reveal(hidden, secret, authenticator) == clear
    if clear:
        assert pap_reveal(hidden, secret + b"x", authenticator) != clear


def test_chap_by_its_formula() -> None:
    """CHAP-Password = identifier + MD5(identifier + password + challenge)."""
    challenge = bytes(range(16))
    response = chap_response(7, b"pw", challenge)
    assert response == b"\x07" + hashlib.md5(b"\x07pw" + challenge).digest()
    assert chap_matches(challenge, response, b"pw")
    assert not chap_matches(challenge, response, b"pW")
    assert not chap_matches(bytes(16), response, b"pw")
    assert not chap_matches(challenge, response[:16], b"pw")  # not 17 octets
    assert not chap_matches(challenge, b"\x08" + response[1:], b"pw")  # another identifier
