"""RADIUS on the wire: parse a request once, verify it, sign replies.

The per-packet path is the mock's hot loop, so it does only what an answer needs: one walk over
the attributes (which also finds malformed packets and a repeated Message-Authenticator), values
decoded only when a condition or the journal asks for them, and replies assembled from attribute
octets encoded once per scripted step (``compile_reply``), so a request costs two digests to
sign. The formulas are those of RFC 2865 section 3 (Response Authenticator) and 5.2
(User-Password), RFC 2866 section 3 (Accounting Request Authenticator), RFC 3579 section 3.2
(Message-Authenticator) and RFC 5997 section 3 (Status-Server); value types come from pyrad's
dictionary and tools (``mock_radius.attributes``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mock_radius.attributes import Value, code_of, decode_value, name_of
from mock_radius.attributes import encode_attribute as encode_attribute
from mock_radius.matching import EMPTY, RequestView

ACCESS_REQUEST = 1
ACCESS_ACCEPT = 2
ACCESS_REJECT = 3
ACCOUNTING_REQUEST = 4
ACCOUNTING_RESPONSE = 5
ACCESS_CHALLENGE = 11
STATUS_SERVER = 12
CODE_NAMES = {
    1: "Access-Request",
    2: "Access-Accept",
    3: "Access-Reject",
    4: "Accounting-Request",
    5: "Accounting-Response",
    11: "Access-Challenge",
    12: "Status-Server",
    13: "Status-Client",
}
MAX_PACKET = 4096  # RFC 2865 section 3: the maximum length of a packet
HEADER = 20
USER_NAME = 1
USER_PASSWORD = 2
CHAP_PASSWORD = 3
STATE = 24
PROXY_STATE = 33
CHAP_CHALLENGE = 60
MESSAGE_AUTHENTICATOR = 80
_ZERO16 = bytes(16)
_MA_PLACEHOLDER = bytes((MESSAGE_AUTHENTICATOR, 18)) + _ZERO16
MASKED = "***"
_SECRET_ATTRIBUTES = {USER_PASSWORD, CHAP_PASSWORD}

ABSENT, VALID, INVALID = "absent", "valid", "invalid"


class BadPacket(Exception):
    """Not a RADIUS packet we may answer; the message says why."""


class Request:
    """A parsed request: header fields and raw attribute values, nothing decoded yet."""

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
        attrs: list[tuple[int, bytes]],
        ma_offset: int,
        user_raw: bytes | None = None,
        state: bytes | None = None,
    ) -> None:
        self.raw = raw
        self.code = raw[0]
        self.id = raw[1]
        self.authenticator = raw[4:20]
        self.attrs = attrs
        self.ma_offset = ma_offset  # -1: no Message-Authenticator
        self.user_raw = user_raw  # the first User-Name
        self.user_name = None if user_raw is None else user_raw.decode("utf-8", "replace")
        self.state = state  # the first State

    def values(self, code: int) -> list[bytes]:
        return [value for kind, value in self.attrs if kind == code]

    def first(self, code: int) -> bytes | None:
        for kind, value in self.attrs:
            if kind == code:
                return value
        return None

    @property
    def auth_type(self) -> str | None:
        kinds = {kind for kind, _ in self.attrs}
        if USER_PASSWORD in kinds:
            return "PAP"
        if CHAP_PASSWORD in kinds:
            return "CHAP"
        return None


def parse(data: bytes) -> Request:
    """One walk over the packet; anything RFC 2865 calls malformed raises BadPacket."""
    if len(data) < HEADER:
        raise BadPacket(f"{len(data)} octets, shorter than a RADIUS header")
    length = int.from_bytes(data[2:4], "big")
    if length < HEADER or length > len(data):
        raise BadPacket(f"the Length field says {length}, the datagram has {len(data)} octets")
    if length > MAX_PACKET:
        raise BadPacket(f"the Length field says {length}, more than {MAX_PACKET}")
    raw = data[:length]  # octets past Length are padding (RFC 2865 section 3)
    attrs: list[tuple[int, bytes]] = []
    ma_offset = -1
    user = state = None
    offset = HEADER
    while offset < length:
        if offset + 2 > length:
            raise BadPacket(f"an attribute header is cut off at octet {offset}")
        kind, size = raw[offset], raw[offset + 1]
        if size < 2 or offset + size > length:
            raise BadPacket(f"attribute {kind} at octet {offset} has length {size}")
        value = raw[offset + 2 : offset + size]
        if kind == MESSAGE_AUTHENTICATOR:
            if ma_offset >= 0:
                raise BadPacket("more than one Message-Authenticator")
            if size != 18:
                raise BadPacket(f"a Message-Authenticator of length {size}")
            ma_offset = offset
        elif kind == USER_NAME and user is None:
            user = value
        elif kind == STATE and state is None:
            state = value
        attrs.append((kind, value))
        offset += size
    return Request(raw, attrs, ma_offset, user, state)


# HMAC-MD5 (RFC 2104) with the keyed pads hashed once per secret: hmac.digest sets up an
# OpenSSL HMAC context per call, which costs four times as much as the two hashes themselves.
_PADS: dict[bytes, tuple[Any, Any]] = {}


def hmac_md5(secret: bytes, message: bytes) -> bytes:
    pads = _PADS.get(secret)
    if pads is None:
        key = hashlib.md5(secret).digest() if len(secret) > 64 else secret  # noqa: S324
        key = key.ljust(64, b"\0")
        pads = (
            hashlib.md5(bytes(b ^ 0x36 for b in key)),  # noqa: S324 - RFC 3579 uses HMAC-MD5
            hashlib.md5(bytes(b ^ 0x5C for b in key)),  # noqa: S324
        )
        if len(_PADS) < 1024:
            _PADS[secret] = pads
    inner = pads[0].copy()
    inner.update(message)
    outer = pads[1].copy()
    outer.update(inner.digest())
    return bytes(outer.digest())


# verification


def _ma_vector(request: Request) -> bytes:
    """What stands in the Authenticator field while the Message-Authenticator is computed."""
    return _ZERO16 if request.code == ACCOUNTING_REQUEST else request.authenticator


def message_authenticator(request: Request, secret: bytes) -> str:
    """ABSENT, VALID or INVALID (RFC 3579 section 3.2: HMAC-MD5 over the packet with the
    Message-Authenticator zeroed)."""
    offset = request.ma_offset
    if offset < 0:
        return ABSENT
    raw = request.raw
    signed = raw[:4] + _ma_vector(request) + raw[20 : offset + 2] + _ZERO16 + raw[offset + 18 :]
    expected = hmac_md5(secret, signed)
    return VALID if hmac.compare_digest(expected, raw[offset + 2 : offset + 18]) else INVALID


def accounting_authenticator_ok(request: Request, secret: bytes) -> bool:
    """RFC 2866 section 3: MD5(Code + Identifier + Length + 16 zero octets + attributes +
    secret)."""
    raw = request.raw
    expected = hashlib.md5(raw[:4] + _ZERO16 + raw[20:] + secret).digest()  # noqa: S324 - RFC
    return hmac.compare_digest(expected, request.authenticator)


def pap_password(request: Request, secret: bytes) -> bytes | None:
    """The clear User-Password (RFC 2865 section 5.2), or None if there is none or it has an
    impossible length."""
    hidden = request.first(USER_PASSWORD)
    if hidden is None or not 16 <= len(hidden) <= 128 or len(hidden) % 16:
        return None
    clear = bytearray()
    last = request.authenticator
    for start in range(0, len(hidden), 16):
        block = hidden[start : start + 16]
        pad = hashlib.md5(secret + last).digest()  # noqa: S324 - RFC 2865 defines it with MD5
        clear += (int.from_bytes(block, "big") ^ int.from_bytes(pad, "big")).to_bytes(16, "big")
        last = block
    return bytes(clear).rstrip(b"\0")


def pap_hide(clear: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """The User-Password octets for ``clear`` (RFC 2865 section 5.2), at most 128."""
    clear = clear[:128]
    padded = clear + b"\0" * (16 - len(clear) % 16 if len(clear) % 16 or not clear else 0)
    hidden = bytearray()
    last = authenticator
    for start in range(0, len(padded), 16):
        pad = hashlib.md5(secret + last).digest()  # noqa: S324 - RFC 2865 defines it with MD5
        block = int.from_bytes(padded[start : start + 16], "big") ^ int.from_bytes(pad, "big")
        last = block.to_bytes(16, "big")
        hidden += last
    return bytes(hidden)


def chap_exchange(request: Request) -> tuple[bytes, bytes] | None:
    """(challenge, CHAP-Password) of a CHAP request (RFC 2865 section 2.2), else None."""
    response = request.first(CHAP_PASSWORD)
    if response is None or len(response) != 17:
        return None
    challenge = request.first(CHAP_CHALLENGE) or request.authenticator
    return challenge, response


def chap_matches(exchange: tuple[bytes, bytes], clear: bytes) -> bool:
    challenge, response = exchange
    expected = hashlib.md5(response[:1] + clear + challenge).digest()  # noqa: S324 - RFC 1994
    return hmac.compare_digest(expected, response[1:])


class RequestAttributes(Mapping[str, list[Value]]):
    """The request's attributes by name, each decoded on first use only."""

    __slots__ = ("_cache", "_request")

    def __init__(self, request: Request) -> None:
        self._request = request
        self._cache: dict[str, list[Value]] = {}

    def __getitem__(self, name: str) -> list[Value]:
        found = self._cache.get(name)
        if found is None:
            try:
                code = code_of(name)
            except KeyError:
                raise KeyError(name) from None
            raw = self._request.values(code)
            if not raw:
                raise KeyError(name)
            found = self._cache[name] = [decode_value(code, value) for value in raw]
        return found

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for kind, _ in self._request.attrs:
            seen.setdefault(name_of(kind), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({kind for kind, _ in self._request.attrs})


class WireView(RequestView):
    """A request as the engine sees it: attributes decoded and the PAP password revealed only
    if a step asks."""

    __slots__ = ("_request", "_revealed", "_secret")

    def __init__(self, request: Request, secret: bytes, ma_status: str) -> None:
        # the base class's slots, set directly: this runs for every request
        auth_type = request.auth_type
        self.user_name = request.user_name
        self.state = request.state
        self.message_authenticator = ma_status == VALID
        self.auth_type = auth_type
        self.chap = chap_exchange(request) if auth_type == "CHAP" else None
        self._attributes = EMPTY
        self._request = request
        self._secret = secret
        self._revealed: list[bytes | None] = []

    @property
    def attributes(self) -> Mapping[str, Sequence[Value]]:
        if self._attributes is EMPTY:
            self._attributes = RequestAttributes(self._request)
        return self._attributes

    def _pap(self) -> bytes | None:
        if not self._revealed:
            self._revealed.append(pap_password(self._request, self._secret))
        return self._revealed[0]

    def password_matches(self, expected: str) -> bool:
        wanted = expected.encode("utf-8")
        if self.chap is not None:
            return chap_matches(self.chap, wanted)
        revealed = self._pap()
        return revealed is not None and hmac.compare_digest(revealed, wanted)

    @property
    def clear_password(self) -> str | None:
        return _text(self._pap()) if self.chap is None else None


def view(request: Request, secret: bytes, ma_status: str) -> RequestView:
    """What the engine needs of a request."""
    return WireView(request, secret, ma_status)


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "ignore")


# replies


@dataclass(frozen=True, slots=True)
class ReplyTemplate:
    """A scripted reply with its attributes encoded once; a generated State goes between
    ``head`` and ``tail``."""

    code: int
    head: bytes
    tail: bytes = b""
    generates_state: bool = False
    state: bytes | None = None  # a State written in the script, issued as it is


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


def state_attribute(state: bytes) -> bytes:
    return bytes((STATE, len(state) + 2)) + state


def proxy_states(request: Request) -> bytes:
    """The request's Proxy-State attributes, unchanged and in order (RFC 2865 section 5.33)."""
    return b"".join(
        bytes((PROXY_STATE, len(value) + 2)) + value
        for kind, value in request.attrs
        if kind == PROXY_STATE
    )


def sign(
    code: int,
    identifier: int,
    request_authenticator: bytes,
    attributes: bytes,
    secret: bytes,
    *,
    message_authenticator: bool,
) -> bytes:
    """A reply: the Message-Authenticator first (when asked), then the Response Authenticator
    MD5(Code + Identifier + Length + Request Authenticator + attributes + secret)."""
    length = HEADER + len(attributes) + (18 if message_authenticator else 0)
    header = bytes((code, identifier)) + length.to_bytes(2, "big")
    if message_authenticator:
        mac = hmac_md5(secret, header + request_authenticator + _MA_PLACEHOLDER + attributes)
        attributes = bytes((MESSAGE_AUTHENTICATOR, 18)) + mac + attributes
    response = hashlib.md5(  # noqa: S324 - RADIUS defines the Response Authenticator with MD5
        header + request_authenticator + attributes + secret
    ).digest()
    return header + response + attributes


def build_reply(
    request: Request,
    secret: bytes,
    template: ReplyTemplate,
    *,
    state: bytes | None = None,
    extra: bytes = b"",
    fault: str | None = None,
) -> list[bytes]:
    """The datagrams answering ``request``: one, or two for the ``duplicate`` fault."""
    middle = state_attribute(state) if template.generates_state and state is not None else b""
    attributes = template.head + middle + template.tail + extra + proxy_states(request)
    raw = sign(
        template.code,
        request.id,
        request.authenticator,
        attributes,
        secret,
        message_authenticator=fault != "no-message-authenticator",
    )
    return apply_fault(raw, request.authenticator, secret, fault)


def sign_request(
    identifier: int,
    authenticator: bytes,
    attributes: bytes,
    secret: bytes,
    *,
    code: int = ACCESS_REQUEST,
    message_authenticator: bool = True,
) -> bytes:
    """An Access-Request (or Status-Server) with a Message-Authenticator as its first
    attribute, or none when ``message_authenticator`` is false."""
    length = HEADER + (18 if message_authenticator else 0) + len(attributes)
    header = bytes((code, identifier)) + length.to_bytes(2, "big")
    if not message_authenticator:
        return header + authenticator + attributes
    mac = hmac_md5(secret, header + authenticator + _MA_PLACEHOLDER + attributes)
    return header + authenticator + bytes((MESSAGE_AUTHENTICATOR, 18)) + mac + attributes


def sign_accounting_request(
    identifier: int, attributes: bytes, secret: bytes, *, message_authenticator: bool = False
) -> bytes:
    """An Accounting-Request: the Request Authenticator is MD5 over the packet with 16 zero
    octets in its place, and the secret (RFC 2866 section 3); a Message-Authenticator, when
    asked, is computed first, over the same zero octets (RFC 3579 section 3.2)."""
    length = HEADER + (18 if message_authenticator else 0) + len(attributes)
    header = bytes((ACCOUNTING_REQUEST, identifier)) + length.to_bytes(2, "big")
    if message_authenticator:
        mac = hmac_md5(secret, header + _ZERO16 + _MA_PLACEHOLDER + attributes)
        attributes = bytes((MESSAGE_AUTHENTICATOR, 18)) + mac + attributes
    digest = hashlib.md5(header + _ZERO16 + attributes + secret).digest()  # noqa: S324 - RFC
    return header + digest + attributes


def verify_reply(reply: Request, request_authenticator: bytes, secret: bytes) -> bool:
    """The Response Authenticator and, if present, the Message-Authenticator of a reply to a
    request with ``request_authenticator`` (RFC 2865 section 3, RFC 3579 section 3.2)."""
    raw = reply.raw
    expected = hashlib.md5(  # noqa: S324 - RADIUS defines the Response Authenticator with MD5
        raw[:4] + request_authenticator + raw[20:] + secret
    ).digest()
    if not hmac.compare_digest(expected, reply.authenticator):
        return False
    offset = reply.ma_offset
    if offset < 0:
        return True
    signed = raw[:4] + request_authenticator + raw[20 : offset + 2] + _ZERO16 + raw[offset + 18 :]
    return hmac.compare_digest(hmac_md5(secret, signed), raw[offset + 2 : offset + 18])


def encode_pairs(pairs: list[tuple[int, bytes]]) -> bytes:
    return b"".join(bytes((kind, len(value) + 2)) + value for kind, value in pairs)


def decoded_attributes(pairs: list[tuple[int, bytes]]) -> dict[str, list[Value]]:
    """Attributes by name with their decoded values, repeats in order."""
    out: dict[str, list[Value]] = {}
    for kind, raw in pairs:
        out.setdefault(name_of(kind), []).append(decode_value(kind, raw))
    return out


def status_reply(request: Request, secret: bytes, code: int) -> bytes:
    """Access-Accept (auth port) or Accounting-Response (accounting port) to a Status-Server,
    signed with its Request Authenticator (RFC 5997 section 3)."""
    return sign(
        code,
        request.id,
        request.authenticator,
        proxy_states(request),
        secret,
        message_authenticator=True,
    )


def accounting_reply(request: Request, secret: bytes, template: ReplyTemplate) -> bytes:
    """Accounting-Response (RFC 2866 section 3); no Message-Authenticator, as FreeRADIUS."""
    attributes = template.head + template.tail + proxy_states(request)
    return sign(
        ACCOUNTING_RESPONSE,
        request.id,
        request.authenticator,
        attributes,
        secret,
        message_authenticator=False,
    )


# faults


def resign(raw: bytes, request_authenticator: bytes, secret: bytes, *, fix_ma: bool) -> bytes:
    """Recompute the Message-Authenticator (when ``fix_ma``) and the Response Authenticator of
    a reply whose bytes were changed, so a fault breaks exactly one thing."""
    data = bytearray(raw)
    data[2:4] = len(data).to_bytes(2, "big")
    if fix_ma:
        offset = HEADER
        while offset + 2 <= len(data):
            kind, length = data[offset], data[offset + 1]
            if length < 2:
                break
            if kind == MESSAGE_AUTHENTICATOR and length == 18:
                data[offset + 2 : offset + 18] = _ZERO16
                zeroed = bytes(data[:4]) + request_authenticator + bytes(data[20:])
                data[offset + 2 : offset + 18] = hmac_md5(secret, zeroed)
                break
            offset += length
    digest = hashlib.md5(  # noqa: S324 - RADIUS defines the Response Authenticator with MD5
        bytes(data[:4]) + request_authenticator + bytes(data[20:]) + secret
    ).digest()
    data[4:20] = digest
    return bytes(data)


def _flip(data: bytearray, start: int, end: int) -> None:
    for index in range(start, end):
        data[index] ^= 0xFF


def apply_fault(
    raw: bytes, request_authenticator: bytes, secret: bytes, fault: str | None
) -> list[bytes]:
    if fault is None:
        return [raw]
    data = bytearray(raw)
    if fault == "bad-response-authenticator":
        _flip(data, 4, 8)
        raw = bytes(data)
    elif fault == "bad-message-authenticator":
        _flip(data, 22, 26)  # the Message-Authenticator is the first attribute
        raw = resign(bytes(data), request_authenticator, secret, fix_ma=False)
    elif fault == "wrong-identifier":
        data[1] = (data[1] + 1) % 256
        raw = resign(bytes(data), request_authenticator, secret, fix_ma=True)
    elif fault == "truncated":
        raw = raw[: max(20, len(raw) - 7)]  # the Length field still claims the whole packet
        if len(raw) == 20:
            raw = raw[:12]
    elif fault == "malformed":
        data += bytes([18, 1])  # an attribute whose length (1) is shorter than its header
        raw = resign(bytes(data), request_authenticator, secret, fix_ma=True)
    if fault == "duplicate":
        return [raw, raw]
    return [raw]


# the journal's view


def attribute_pairs(
    raw: bytes, start: int = HEADER, end: int | None = None
) -> list[tuple[int, bytes]]:
    """Attributes of a packet we built or parsed (or of bare attribute octets, with ``start``
    0 and ``end``); stops quietly where a fault broke it."""
    pairs: list[tuple[int, bytes]] = []
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


def shown_attributes(pairs: list[tuple[int, bytes]]) -> dict[str, list[Any]]:
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
