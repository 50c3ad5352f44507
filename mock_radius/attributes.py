"""Attribute names, codes and values: the mock's dictionary (read by pyrad) and the value
conversions pyrad's tools provide, used once per scripted value and lazily per request."""

from __future__ import annotations

import struct
from functools import cache
from importlib import resources
from typing import Any

from pyrad import tools
from pyrad.dictionary import Dictionary

MAX_VALUE = 253  # octets in one attribute (RFC 2865 section 5)
Value = str | int | bytes


@cache
def dictionary() -> Dictionary:
    path = resources.files("mock_radius").joinpath("dictionary")
    with resources.as_file(path) as file:
        return Dictionary(str(file))


@cache
def _by_code() -> dict[int, Any]:
    return {attr.code: attr for attr in dictionary().attributes.values() if not attr.vendor}


def code_of(name: str) -> int:
    code: int = dictionary().attributes[name].code
    return code


def name_of(code: int) -> str:
    attr = _by_code().get(code)
    return str(attr.name) if attr is not None else f"Attr-{code}"


def encode_value(name: str, value: Value) -> bytes:
    """The octets of one scripted value, cut to what fits one attribute; ValueError (with the
    reason) if the value does not suit the attribute's type."""
    attr = dictionary().attributes[name]
    if isinstance(value, bytes):
        return value[:MAX_VALUE]
    if isinstance(value, str) and attr.values.HasForward(value):
        return bytes(attr.values.GetForward(value))
    if isinstance(value, int) and attr.type == "string":
        value = str(value)  # YAML reads Reply-Message: 123456 as a number
    if isinstance(value, str) and attr.type in ("string", "octets"):
        # text as UTF-8, cut at a character boundary; binary values are written {hex: ...}
        return value.encode("utf-8")[:MAX_VALUE].decode("utf-8", "ignore").encode("utf-8")
    if isinstance(value, str) and attr.type == "integer":
        named = sorted(attr.values.forward)
        raise ValueError(f"{name} takes a number" + (f" or one of {named}" if named else ""))
    try:
        return bytes(tools.EncodeAttr(attr.type, value))[:MAX_VALUE]
    except (TypeError, ValueError, OverflowError, AttributeError, struct.error) as exc:
        raise ValueError(f"{value!r} is not a valid {attr.type} for {name}: {exc}") from None


def encode_attribute(name: str, value: Value) -> bytes:
    raw = encode_value(name, value)
    return bytes((code_of(name), len(raw) + 2)) + raw


def decode_value(code: int, raw: bytes) -> Value:
    """The value as pyrad would show it: named values by name, text as str, else bytes."""
    attr = _by_code().get(code)
    if attr is None:
        return raw
    if attr.values.HasBackward(raw):
        return str(attr.values.GetBackward(raw))
    try:
        value = tools.DecodeAttr(attr.type, raw)
    except Exception:  # pyrad raises several types for values that do not fit their type
        return raw
    return value if isinstance(value, str | int | bytes) else str(value)
