"""Attributes by name: the dictionary file beside this module, read by pyrad, and the value
conversions of pyrad's tools (the only part of pyrad the programs use). Values are encoded
once per scripted value and decoded only when somebody looks at them."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from pyrad import tools
from pyrad.dictionary import Dictionary

from radius_codec.codes import MAX_VALUE_LENGTH
from radius_codec.packet import Pairs, attribute

Value = str | int | bytes


@cache
def dictionary() -> Dictionary:
    path = resources.files("radius_codec").joinpath("dictionary")
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
        return value[:MAX_VALUE_LENGTH]
    if isinstance(value, str) and attr.values.HasForward(value):
        return bytes(attr.values.GetForward(value))
    if isinstance(value, int) and attr.type == "string":
        value = str(value)  # YAML reads Reply-Message: 123456 as a number
    if isinstance(value, str) and attr.type in ("string", "octets"):
        # text as UTF-8, cut at a character boundary; binary values are written {hex: ...}
        return value.encode("utf-8")[:MAX_VALUE_LENGTH].decode("utf-8", "ignore").encode("utf-8")
    if isinstance(value, str) and attr.type == "integer":
        named = sorted(attr.values.forward)
        raise ValueError(f"{name} takes a number" + (f" or one of {named}" if named else ""))
    try:
        return bytes(tools.EncodeAttr(attr.type, value))[:MAX_VALUE_LENGTH]
    except Exception as exc:  # pyrad's tools raise many types (before 2.5, netaddr's too)
        raise ValueError(f"{value!r} is not a valid {attr.type} for {name}: {exc}") from None


def encode_attribute(name: str, value: Value) -> bytes:
    return attribute(code_of(name), encode_value(name, value))


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


def decode_attributes(pairs: Pairs) -> dict[str, list[Value]]:
    """Attributes by name with their decoded values, repeats in order."""
    out: dict[str, list[Value]] = {}
    for kind, raw in pairs:
        out.setdefault(name_of(kind), []).append(decode_value(kind, raw))
    return out
