"""RADIUS packets as octets: parsed in one walk, attributes framed and reframed.

``parse`` is the hot path of the mock (every datagram goes through it), so it walks the
attributes once and remembers on the way what every caller asks for (the first User-Name and
State, where the Message-Authenticator is); values stay undecoded octets. Octets past the
Length field are padding and ignored (RFC 2865 section 3); anything RFC 2865 calls malformed
raises ``BadPacket`` with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from radius_codec.codes import (
    HEADER_LENGTH,
    MAX_PACKET_LENGTH,
    MAX_VALUE_LENGTH,
    MESSAGE_AUTHENTICATOR_LENGTH,
    Attr,
)

# plain ints for the walk: comparing with an int costs less than with an enum member
_USER_NAME, _STATE = int(Attr.USER_NAME), int(Attr.STATE)
_MESSAGE_AUTHENTICATOR = int(Attr.MESSAGE_AUTHENTICATOR)

Pairs = list[tuple[int, bytes]]


class BadPacket(ValueError):
    """Not a RADIUS packet: the message says why."""


class AttributeTooLong(ValueError):
    """A value longer than one attribute carries (253 octets)."""


class Packet:
    """A parsed packet: header fields and the raw attribute values in order."""

    __slots__ = (
        "attrs",
        "authenticator",
        "code",
        "id",
        "ma_offset",
        "raw",
        "state",
        "user_name",
        "user_raw",
    )

    def __init__(
        self,
        raw: bytes,
        attrs: Pairs,
        ma_offset: int,
        user_raw: bytes | None,
        state: bytes | None,
    ) -> None:
        self.raw = raw  # the packet up to its Length field
        self.code = raw[0]
        self.id = raw[1]
        self.authenticator = raw[4:HEADER_LENGTH]
        self.attrs = attrs
        self.ma_offset = ma_offset  # where the Message-Authenticator starts; -1: none
        self.user_raw = user_raw  # the first User-Name
        self.user_name = None if user_raw is None else user_raw.decode("utf-8", "replace")
        self.state = state  # the first State

    def values(self, kind: int) -> list[bytes]:
        return [value for code, value in self.attrs if code == kind]

    def first(self, kind: int) -> bytes | None:
        for code, value in self.attrs:
            if code == kind:
                return value
        return None


def parse(data: bytes) -> Packet:
    """One walk over the packet; BadPacket says what is malformed."""
    if len(data) < HEADER_LENGTH:
        raise BadPacket(f"{len(data)} octets, shorter than a RADIUS header")
    length = int.from_bytes(data[2:4], "big")
    if length < HEADER_LENGTH or length > len(data):
        raise BadPacket(f"the Length field says {length}, the datagram has {len(data)} octets")
    if length > MAX_PACKET_LENGTH:
        raise BadPacket(f"the Length field says {length}, more than {MAX_PACKET_LENGTH}")
    raw = data[:length]  # octets past Length are padding
    attrs: Pairs = []
    ma_offset = -1
    user = state = None
    offset = HEADER_LENGTH
    while offset < length:
        if offset + 2 > length:
            raise BadPacket(f"an attribute header is cut off at octet {offset}")
        kind, size = raw[offset], raw[offset + 1]
        if size < 2 or offset + size > length:
            raise BadPacket(f"attribute {kind} at octet {offset} has length {size}")
        value = raw[offset + 2 : offset + size]
        if kind == _MESSAGE_AUTHENTICATOR:
            if ma_offset >= 0:
                raise BadPacket("more than one Message-Authenticator")
            if size != MESSAGE_AUTHENTICATOR_LENGTH:
                raise BadPacket(f"a Message-Authenticator of length {size}")
            ma_offset = offset
        elif kind == _USER_NAME and user is None:
            user = value
        elif kind == _STATE and state is None:
            state = value
        attrs.append((kind, value))
        offset += size
    return Packet(raw, attrs, ma_offset, user, state)


def attribute(kind: int, value: bytes) -> bytes:
    """One attribute's octets: type, length, value."""
    if len(value) > MAX_VALUE_LENGTH:
        raise AttributeTooLong(
            f"attribute {kind}: {len(value)} octets, more than the {MAX_VALUE_LENGTH} one carries"
        )
    return bytes((kind, len(value) + 2)) + value


def encode_pairs(pairs: Iterable[tuple[int, bytes]]) -> bytes:
    return b"".join(attribute(kind, value) for kind, value in pairs)


def header(code: int, identifier: int, length: int) -> bytes:
    """Code, Identifier and Length: the first four octets."""
    return bytes((code, identifier)) + length.to_bytes(2, "big")


def walk_attributes(raw: bytes, start: int = HEADER_LENGTH, end: int | None = None) -> Pairs:
    """The attributes of a packet, or of bare attribute octets (``start`` 0, ``end``), as far
    as they are well framed: unlike ``parse`` it stops quietly where the framing breaks, for
    showing packets that were broken on purpose."""
    pairs: Pairs = []
    if end is None:
        end = min(len(raw), int.from_bytes(raw[2:4], "big")) if len(raw) >= 4 else 0
    offset = start
    while offset + 2 <= end:
        kind, size = raw[offset], raw[offset + 1]
        if size < 2 or offset + size > end:
            break
        pairs.append((kind, raw[offset + 2 : offset + size]))
        offset += size
    return pairs
