"""radius_codec/dictionary.py: values by name through the dictionary and pyrad's tools."""

from __future__ import annotations

import pytest

from radius_codec.dictionary import (
    code_of,
    decode_attributes,
    decode_value,
    encode_attribute,
    encode_value,
    name_of,
)


def test_names_and_numbers() -> None:
    assert (code_of("Reply-Message"), name_of(18)) == (18, "Reply-Message")
    assert name_of(250) == "Attr-250"
    with pytest.raises(KeyError):
        code_of("No-Such-Attribute")


@pytest.mark.parametrize(
    ("name", "value", "octets", "decoded"),
    [
        ("Reply-Message", "héllo", "héllo".encode(), "héllo"),
        ("Reply-Message", 123456, b"123456", "123456"),  # YAML reads digits as a number
        ("Session-Timeout", 90, (90).to_bytes(4, "big"), 90),
        ("Service-Type", "Login-User", (1).to_bytes(4, "big"), "Login-User"),
        ("Acct-Status-Type", "Start", (1).to_bytes(4, "big"), "Start"),
        ("State", b"\x00\xff", b"\x00\xff", b"\x00\xff"),
        ("NAS-IP-Address", "192.0.2.7", bytes((192, 0, 2, 7)), "192.0.2.7"),
    ],
)
def test_values_encode_and_decode(name: str, value: object, octets: bytes, decoded: object) -> None:
    assert encode_value(name, value) == octets  # type: ignore[arg-type]
    assert decode_value(code_of(name), octets) == decoded
    assert encode_attribute(name, value) == bytes((code_of(name), len(octets) + 2)) + octets  # type: ignore[arg-type]


def test_text_is_cut_at_a_character_boundary_and_octets_at_253() -> None:
    assert encode_value("Reply-Message", "é" * 200) == "é".encode() * 126  # 252 octets
    assert encode_value("State", bytes(300)) == bytes(253)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Session-Timeout", "soon", "Session-Timeout takes a number"),
        ("Acct-Status-Type", "Begin", "Acct-Status-Type takes a number or one of"),
        ("Session-Timeout", 2**40, "is not a valid integer for Session-Timeout"),
        ("NAS-IP-Address", "not an address", "is not a valid ipaddr for NAS-IP-Address"),
    ],
)
def test_values_that_do_not_fit_are_refused_with_the_reason(
    name: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_value(name, value)  # type: ignore[arg-type]


def test_undecodable_and_unknown_values_stay_octets() -> None:
    assert decode_value(code_of("Session-Timeout"), b"\x01") == b"\x01"  # not 4 octets
    assert decode_value(250, b"raw") == b"raw"


def test_attributes_by_name_keep_repeats_in_order() -> None:
    pairs = [(18, b"one"), (1, b"u"), (18, b"two")]
    assert decode_attributes(pairs) == {"Reply-Message": ["one", "two"], "User-Name": ["u"]}
