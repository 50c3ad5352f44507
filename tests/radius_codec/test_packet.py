"""radius_codec/packet.py: parsing (any octets give a packet or BadPacket with the reason),
framing, and round trips build -> parse; also against pyrad, a second implementation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrad import packet as rp

from radius_codec.codes import HEADER_LENGTH, MAX_PACKET_LENGTH, MAX_VALUE_LENGTH, Attr, Code
from radius_codec.dictionary import dictionary
from radius_codec.packet import (
    AttributeTooLong,
    BadPacket,
    attribute,
    encode_pairs,
    header,
    parse,
    walk_attributes,
)

AUTHENTICATOR = bytes(range(16))
PAIRS = st.lists(
    st.tuples(
        st.integers(1, 255).filter(lambda kind: kind != Attr.MESSAGE_AUTHENTICATOR),
        st.binary(max_size=40),
    ),
    max_size=12,
)


def _packet(
    pairs: list[tuple[int, bytes]], code: int = Code.ACCESS_REQUEST, ident: int = 7
) -> bytes:
    attributes = b"".join(bytes((kind, len(value) + 2)) + value for kind, value in pairs)
    return (
        bytes((code, ident))
        + (20 + len(attributes)).to_bytes(2, "big")
        + AUTHENTICATOR
        + attributes
    )


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=600))
def test_any_octets_parse_or_raise_bad_packet(data: bytes) -> None:
    try:
        packet = parse(data)
    except BadPacket as exc:
        assert str(exc)  # a reason, always
    else:
        assert len(packet.raw) == int.from_bytes(data[2:4], "big") <= len(data)
        assert sum(len(value) + 2 for _, value in packet.attrs) == len(packet.raw) - 20


@settings(max_examples=300, deadline=None)
@given(PAIRS, st.sampled_from(list(Code)), st.integers(0, 255), st.binary(max_size=30))
def test_a_built_packet_parses_back(
    pairs: list[tuple[int, bytes]], code: Code, ident: int, padding: bytes
) -> None:
    attributes = encode_pairs(pairs)
    raw = header(code, ident, HEADER_LENGTH + len(attributes)) + AUTHENTICATOR + attributes
    packet = parse(raw + padding)  # octets past Length are padding (RFC 2865 section 3)
    assert (packet.code, packet.id, packet.authenticator) == (code, ident, AUTHENTICATOR)
    assert packet.raw == raw and packet.attrs == pairs and packet.ma_offset == -1
    users = [value for kind, value in pairs if kind == Attr.USER_NAME]
    states = [value for kind, value in pairs if kind == Attr.STATE]
    assert packet.user_raw == (users[0] if users else None)
    assert packet.user_name == (users[0].decode("utf-8", "replace") if users else None)
    assert packet.state == (states[0] if states else None)
    for kind in {kind for kind, _ in pairs}:
        assert packet.values(kind) == [value for k, value in pairs if k == kind]
        assert packet.first(kind) == packet.values(kind)[0]
    assert walk_attributes(raw) == pairs


ATTRIBUTES = st.lists(
    st.one_of(
        st.tuples(st.just("User-Name"), st.text(min_size=1, max_size=40)),
        st.tuples(st.just("NAS-Port"), st.integers(0, 2**32 - 1)),
        st.tuples(st.just("State"), st.binary(min_size=1, max_size=60)),
        st.tuples(st.just("Proxy-State"), st.binary(min_size=1, max_size=60)),
        st.tuples(st.just("Reply-Message"), st.text(min_size=1, max_size=60)),
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(ATTRIBUTES, st.binary(min_size=1, max_size=20), st.booleans())
def test_parse_reads_what_pyrad_writes(
    attributes: list[tuple[str, Any]], secret: bytes, with_ma: bool
) -> None:
    packet = rp.AuthPacket(code=rp.AccessRequest, secret=secret, dict=dictionary())
    packet.authenticator = packet.CreateAuthenticator()
    for name, value in attributes:
        packet.AddAttribute(name, value)
    if with_ma:
        packet.add_message_authenticator()
    raw = packet.RequestPacket()
    parsed = parse(raw)
    assert (parsed.code, parsed.id, parsed.authenticator) == (1, packet.id, packet.authenticator)
    decoded = rp.AuthPacket(packet=raw, secret=secret, dict=dictionary())
    for code in decoded.keys():  # noqa: SIM118 - pyrad: iteration gives codes
        if isinstance(code, int):
            assert parsed.values(code) == decoded[code]
    assert (parsed.ma_offset >= 0) == with_ma


MA = bytes((Attr.MESSAGE_AUTHENTICATOR, 18)) + bytes(16)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (bytes(19), "19 octets, shorter than a RADIUS header"),
        (_packet([])[:2] + (19).to_bytes(2, "big") + bytes(16), "the Length field says 19, the "
         "datagram has 20 octets"),
        (_packet([(1, b"ab")])[:-1], "the Length field says 24, the datagram has 23 octets"),
        (_packet([(1, b"x")])[:21] + b"\x01\x01", "attribute 1 at octet 20 has length 1"),
        (_packet([(1, b"x"), (18, b"")])[:23] + b"\x12\x09", "attribute 18 at octet 23 has "
         "length 9"),
        (_packet([(80, bytes(16)), (80, bytes(16))]), "more than one Message-Authenticator"),
        (_packet([(80, bytes(15))]), "a Message-Authenticator of length 17"),
        (_packet([(18, bytes(200))] * 21), "the Length field says 4262, more than 4096"),
    ],
    ids=["short", "Length below 20", "Length beyond the datagram",
         "an attribute length below 2", "an attribute beyond Length", "two MAs", "a short MA",
         "over 4096"],
)  # fmt: skip
def test_malformed_packets_are_refused_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(BadPacket) as refused:
        parse(raw)
    assert str(refused.value) == reason


def test_a_cut_attribute_header_at_the_end() -> None:
    raw = bytearray(_packet([]) + b"\x01")
    raw[2:4] = (21).to_bytes(2, "big")
    with pytest.raises(BadPacket, match=r"^an attribute header is cut off at octet 20$"):
        parse(bytes(raw))


def test_the_largest_packet_parses() -> None:
    pairs = [(18, bytes(253))] * 15 + [(18, bytes(4096 - 20 - 15 * 255 - 2))]
    assert len(_packet(pairs)) == MAX_PACKET_LENGTH
    assert parse(_packet(pairs)).attrs == pairs


def test_an_attribute_holds_at_most_253_octets() -> None:
    assert attribute(Attr.REPLY_MESSAGE, bytes(MAX_VALUE_LENGTH)) == b"\x12\xff" + bytes(253)
    with pytest.raises(AttributeTooLong, match="254 octets, more than the 253 one carries"):
        attribute(Attr.REPLY_MESSAGE, bytes(MAX_VALUE_LENGTH + 1))


def test_walk_stops_at_the_length_field() -> None:
    """Octets past Length are padding, even where they look like attributes."""
    pairs = [(18, bytes(150)), (18, bytes(150))]
    assert len(_packet(pairs)) > 256  # a Length of two octets, both read
    assert walk_attributes(_packet(pairs) + b"\x12\x03x") == pairs


def test_walk_stops_quietly_where_the_framing_breaks() -> None:
    good = _packet([(1, b"u"), (18, b"hi")])
    broken = bytearray(good + b"\x12\x01")  # an attribute shorter than its header
    broken[2:4] = len(broken).to_bytes(2, "big")
    assert walk_attributes(bytes(broken)) == [(1, b"u"), (18, b"hi")]
    assert walk_attributes(good[:-1]) == [(1, b"u")]  # cut short: the Length field lies
    assert walk_attributes(b"\x01\x03u\x12", 0, 4) == [(1, b"u")]
    assert walk_attributes(b"\x01") == []
