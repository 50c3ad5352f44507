# -*- test-case-name: tests.test_mock_replies -*-
"""The mock's replies: scripted attributes encoded once per step (``compile_reply``), then per
request only the State, the Proxy-States and two digests to sign (RFC 2865 section 3 and
5.33, RFC 2866 section 3, RFC 5997 section 3)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mock_radius.faults import Fault, apply_fault
from radius_codec.authenticators import sign_reply
from radius_codec.codes import Attr, Code
from radius_codec.dictionary import Value, encode_attribute
from radius_codec.packet import Packet, attribute

_PROXY_STATE = int(Attr.PROXY_STATE)
_NO_MESSAGE_AUTHENTICATOR = Fault.NO_MESSAGE_AUTHENTICATOR  # an enum attribute costs ~70 ns


@dataclass(frozen=True, slots=True)
class ReplyTemplate:
    """A scripted reply with its attributes encoded once; a generated State goes between
    ``head`` and ``tail``."""

    code: int
    head: bytes
    tail: bytes = b""
    generates_state: bool = False
    state: bytes | None = None  # a State written in the script, issued as it is

    def attributes(self, state: bytes | None, extra: bytes = b"") -> bytes:
        """The attribute octets with the State the reply carries (when it generates one)."""
        middle = state_attribute(state) if self.generates_state and state is not None else b""
        return self.head + middle + self.tail + extra


def compile_reply(code: int, attributes: Mapping[str, Any]) -> ReplyTemplate:
    """Encode a reply's scripted attributes; ``{generate: true}`` marks where the State goes.
    Values are objects with ``hex`` or ``generate`` fields (the scenario models) or plain."""
    head: list[bytes] = []
    tail: list[bytes] = []
    generates = False
    state: bytes | None = None
    for name, value in attributes.items():
        for item in value if isinstance(value, list) else [value]:
            if getattr(item, "generate", False):
                generates = True
                continue
            hex_value = getattr(item, "hex", None)
            plain: Value = bytes.fromhex(hex_value) if isinstance(hex_value, str) else item
            encoded = encode_attribute(name, plain)
            if name == "State" and state is None and not generates:
                state = encoded[2:]
            (tail if generates else head).append(encoded)
    return ReplyTemplate(code, b"".join(head), b"".join(tail), generates, state)


EMPTY_ACCOUNTING = ReplyTemplate(Code.ACCOUNTING_RESPONSE, b"")


def state_attribute(state: bytes) -> bytes:
    return attribute(Attr.STATE, state)


def proxy_states(request: Packet) -> bytes:
    """The request's Proxy-State attributes, unchanged and in order (RFC 2865 section 5.33)."""
    return b"".join(
        bytes((_PROXY_STATE, len(value) + 2)) + value
        for kind, value in request.attrs
        if kind == _PROXY_STATE
    )


def build_reply(
    request: Packet,
    secret: bytes,
    template: ReplyTemplate,
    *,
    state: bytes | None = None,
    extra: bytes = b"",
    fault: Fault | None = None,
) -> list[bytes]:
    """The datagrams answering an Access-Request: one, or two for the ``duplicate`` fault."""
    raw = sign_reply(
        template.code,
        request.id,
        request.authenticator,
        template.attributes(state, extra) + proxy_states(request),
        secret,
        message_authenticator=fault is not _NO_MESSAGE_AUTHENTICATOR,
    )
    return apply_fault(raw, request.authenticator, secret, fault)


def status_reply(request: Packet, secret: bytes, code: int) -> bytes:
    """Access-Accept (auth port) or Accounting-Response (accounting port) to a Status-Server,
    signed with its Request Authenticator (RFC 5997 section 3)."""
    return sign_reply(
        code,
        request.id,
        request.authenticator,
        proxy_states(request),
        secret,
        message_authenticator=True,
    )


def accounting_reply(request: Packet, secret: bytes, template: ReplyTemplate) -> bytes:
    """Accounting-Response (RFC 2866 section 3); no Message-Authenticator, as FreeRADIUS."""
    return sign_reply(
        Code.ACCOUNTING_RESPONSE,
        request.id,
        request.authenticator,
        template.head + template.tail + proxy_states(request),
        secret,
        message_authenticator=False,
    )
