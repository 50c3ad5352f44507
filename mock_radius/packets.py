"""Wire format: decoding requests and encoding replies (with scripted faults) using pyrad."""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections import OrderedDict
from typing import Any

from pyrad import packet as rp

from mock_radius.matching import RequestView
from mock_radius.scenario import dictionary

ACCESS_REQUEST = rp.AccessRequest
CODE_NAMES = {
    1: "Access-Request",
    2: "Access-Accept",
    3: "Access-Reject",
    4: "Accounting-Request",
    5: "Accounting-Response",
    11: "Access-Challenge",
    12: "Status-Server",
}
MESSAGE_AUTHENTICATOR = 80
_MAX_VALUE = 253
MASKED = "***"
_SECRET_ATTRIBUTES = {"User-Password", "CHAP-Password"}


class BadPacket(Exception):
    pass


def decode(data: bytes) -> rp.AuthPacket:
    """Any malformed input becomes BadPacket; nothing else escapes."""
    try:
        return rp.AuthPacket(packet=data, dict=dictionary(), secret=b"")
    except Exception as exc:  # pyrad raises several types for bad input
        raise BadPacket(str(exc) or type(exc).__name__) from None


def _name(code: int) -> str:
    try:
        return str(dictionary().attrindex.GetBackward(code))
    except KeyError:
        return f"Attr-{code}"


def attribute_values(pkt: rp.Packet) -> dict[str, list[str | int | bytes]]:
    """Decoded attributes by name; values that do not decode stay bytes."""
    out: dict[str, list[str | int | bytes]] = {}
    for code in OrderedDict.keys(pkt):
        if not isinstance(code, int):
            continue
        name = _name(code)
        raw_values = OrderedDict.__getitem__(pkt, code)
        try:
            values = pkt[name] if not name.startswith("Attr-") else list(raw_values)
        except Exception:
            values = list(raw_values)
        out[name] = [v if isinstance(v, str | int | bytes) else str(v) for v in values]
    return out


def grouped(pairs: tuple[tuple[str, str | int | bytes], ...]) -> dict[str, list[str | int | bytes]]:
    """(name, value) pairs by name, repeats kept in order."""
    out: dict[str, list[str | int | bytes]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


def journal_attributes(values: dict[str, list[str | int | bytes]]) -> dict[str, list[Any]]:
    """JSON-ready attributes with secrets masked and bytes as hex."""
    shown: dict[str, list[Any]] = {}
    for name, items in values.items():
        if name in _SECRET_ATTRIBUTES:
            shown[name] = [MASKED for _ in items]
        else:
            shown[name] = [("0x" + v.hex()) if isinstance(v, bytes) else v for v in items]
    return shown


def message_authenticator_status(pkt: rp.AuthPacket, secret: bytes) -> str:
    """ "absent", "valid" or "invalid" for an Access-Request (RFC 3579 3.2)."""
    if not OrderedDict.__contains__(pkt, MESSAGE_AUTHENTICATOR):
        return "absent"
    try:
        valid = pkt.verify_message_authenticator(secret=secret)
    except Exception:
        valid = False
    return "valid" if valid else "invalid"


def request_view(
    pkt: rp.AuthPacket,
    secret: bytes,
    ma_status: str,
    values: dict[str, list[str | int | bytes]] | None = None,
) -> RequestView:
    pkt.secret = secret
    if values is None:
        values = attribute_values(pkt)
    user = values.get("User-Name", [None])[0]
    state = values.get("State", [None])[0]
    auth_type: str | None = None
    if "User-Password" in values:
        auth_type = "PAP"
    elif "CHAP-Password" in values:
        auth_type = "CHAP"

    clear: str | None = None  # PAP: decrypted once, whatever the number of steps tried
    if auth_type == "PAP":
        try:
            clear = pkt.PwDecrypt(OrderedDict.__getitem__(pkt, 2)[0])
        except Exception:
            clear = None

    def password_matches(expected: str) -> bool:
        if auth_type == "PAP":
            return clear is not None and hmac.compare_digest(clear.encode(), expected.encode())
        if auth_type == "CHAP":
            try:
                return bool(pkt.VerifyChapPasswd(expected.encode()))
            except Exception:
                return False
        return False

    return RequestView(
        clear_password=clear,
        user_name=user if isinstance(user, str) else None,
        state=state if isinstance(state, bytes) else None,
        message_authenticator=ma_status == "valid",
        attributes=values,
        password_matches=password_matches,
        auth_type=auth_type,
    )


def _fit(value: str | int | bytes) -> str | int | bytes:
    if isinstance(value, str):
        encoded = value.encode("utf-8")[:_MAX_VALUE]
        return encoded.decode("utf-8", "ignore")
    if isinstance(value, bytes):
        return value[:_MAX_VALUE]
    return value


def resign(raw: bytes, request_authenticator: bytes, secret: bytes, *, fix_ma: bool) -> bytes:
    """Recompute the Message-Authenticator (when ``fix_ma``) and the Response Authenticator of
    a reply whose bytes were changed, so a fault breaks exactly one thing."""
    data = bytearray(raw)
    struct.pack_into("!H", data, 2, len(data))
    if fix_ma:
        offset = 20
        while offset + 2 <= len(data):
            code, length = data[offset], data[offset + 1]
            if length < 2:
                break
            if code == MESSAGE_AUTHENTICATOR and length == 18:
                data[offset + 2 : offset + 18] = bytes(16)
                zeroed = bytes(data[:4]) + request_authenticator + bytes(data[20:])
                mac = hmac.new(secret, zeroed, "md5").digest()
                data[offset + 2 : offset + 18] = mac
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


def encode_reply(
    request: rp.AuthPacket,
    secret: bytes,
    code: int,
    attributes: tuple[tuple[str, str | int | bytes], ...],
    fault: str | None = None,
) -> list[bytes]:
    """The datagrams to send: normally one, two for the "duplicate" fault."""
    reply = request.CreateReply()
    reply.code = code
    reply.secret = secret
    if fault == "no-message-authenticator":
        reply.message_authenticator = False
    for name, value in attributes:
        reply.AddAttribute(name, _fit(value))
    raw = reply.ReplyPacket()
    auth = request.authenticator
    if fault == "bad-response-authenticator":
        data = bytearray(raw)
        _flip(data, 4, 8)
        raw = bytes(data)
    elif fault == "bad-message-authenticator":
        data = bytearray(raw)
        _flip(data, 22, 26)  # the Message-Authenticator is the first attribute
        raw = resign(bytes(data), auth, secret, fix_ma=False)
    elif fault == "wrong-identifier":
        data = bytearray(raw)
        data[1] = (data[1] + 1) % 256
        raw = resign(bytes(data), auth, secret, fix_ma=True)
    elif fault == "truncated":
        raw = raw[: max(20, len(raw) - 7)]  # the Length field still claims the whole packet
        if len(raw) == 20:
            raw = raw[:12]
    elif fault == "malformed":
        data = bytearray(raw)
        data += bytes([18, 1])  # an attribute whose length (1) is shorter than its header
        raw = resign(bytes(data), auth, secret, fix_ma=True)
    if fault == "duplicate":
        return [raw, raw]
    return [raw]
