# -*- test-case-name: tests.test_mock_rendering -*-
"""Packets shown to people (the journal, the live page, a Decision's attributes): attributes by
name with decoded values, secrets masked, octets as 0x hex. Decoding happens here, when
somebody reads, never on the packet path; packets broken by a fault show as far as they parse."""

from __future__ import annotations

from typing import Any

from mock_radius.request_view import auth_protocol
from mock_radius.scenario import COMPUTED_ATTRIBUTES
from radius_codec.codes import Attr, code_label
from radius_codec.dictionary import decode_value, name_of
from radius_codec.packet import Pairs, walk_attributes

MASKED = "***"
_SECRET_ATTRIBUTES = {Attr.USER_PASSWORD, Attr.CHAP_PASSWORD}


def shown_attributes(pairs: Pairs) -> dict[str, list[Any]]:
    """JSON-ready attributes by name: secrets masked, octets as 0x hex."""
    shown: dict[str, list[Any]] = {}
    for kind, raw in pairs:
        if kind in _SECRET_ATTRIBUTES:
            value: Any = MASKED
        else:
            decoded = decode_value(kind, raw)
            value = "0x" + decoded.hex() if isinstance(decoded, bytes) else decoded
        shown.setdefault(name_of(kind), []).append(value)
    return shown


def shown_octets(attributes: bytes) -> dict[str, list[Any]]:
    """Bare attribute octets (a reply template's), shown."""
    return shown_attributes(walk_attributes(attributes, 0, len(attributes)))


def request_fields(raw: bytes) -> dict[str, Any]:
    """A request's attributes and how it carries its password."""
    pairs = walk_attributes(raw)
    protocol = auth_protocol({kind for kind, _ in pairs})
    return {
        "attributes": shown_attributes(pairs),
        "authType": None if protocol is None else protocol.value,
    }


def reply_fields(raw: bytes) -> dict[str, Any]:
    """A reply's code and the attributes a scenario could have scripted."""
    shown = shown_attributes(walk_attributes(raw))
    return {
        "code": code_label(raw[0]),
        "attributes": {
            name: values for name, values in shown.items() if name not in COMPUTED_ATTRIBUTES
        },
    }
