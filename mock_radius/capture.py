# -*- test-case-name: tests.test_record_import -*-
"""RADIUS exchanges from a packet capture (pcap or pcapng), for ``mock-radius import``.

Captures are read with scapy: actively maintained, pure Python, and one reader
(``PcapReader``) for both pcap and pcapng, with the IP/IPv6/UDP dissection done for us; tshark
would add a Wireshark install and a JSON schema that changes between versions. RADIUS is found
on any port by decoding: an Access-Request, and a reply from the other end with the same
identifier whose Response Authenticator verifies with the shared secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mock_radius.recording import Exchange, access_exchange
from radius_codec.authenticators import message_authenticator_status, verify_reply
from radius_codec.codes import Attr, Code, code_label
from radius_codec.dictionary import decode_attributes
from radius_codec.packet import BadPacket, Packet, parse


class CaptureError(Exception):
    """The capture cannot be used; the message says why."""


@dataclass
class CaptureSummary:
    exchanges: list[Exchange]
    datagrams: int
    not_radius: int
    unverified_replies: int
    truncated: bool


def _udp_datagrams(path: Path) -> tuple[list[tuple[float, str, int, str, int, bytes]], bool]:
    from scapy.error import Scapy_Exception
    from scapy.layers.inet import UDP
    from scapy.utils import PcapReader

    found: list[tuple[float, str, int, str, int, bytes]] = []
    truncated = False
    try:
        reader = PcapReader(str(path))
    except (Scapy_Exception, OSError, EOFError) as exc:
        raise CaptureError(f"{path}: not a pcap or pcapng capture ({exc})") from None
    try:
        while True:
            try:
                frame = reader.read_packet()
            except EOFError:
                break
            except (Scapy_Exception, ValueError, OSError):
                truncated = True
                break
            if frame is None:
                break
            if UDP not in frame:
                continue
            udp = frame[UDP]
            ip = udp.underlayer
            payload = bytes(udp.payload)
            if getattr(udp, "len", None) and udp.len - 8 > len(payload):
                truncated = True  # snap length or a cut file: the datagram is incomplete
            found.append(
                (float(frame.time), str(ip.src), int(udp.sport), str(ip.dst), int(udp.dport),
                 payload)
            )  # fmt: skip
    finally:
        reader.close()
    if path.stat().st_size and not truncated:
        truncated = _ends_mid_record(path)
    return found, truncated


def _ends_mid_record(path: Path) -> bool:
    """scapy stops quietly at a half-written last record; check the pcap framing ourselves."""
    data = path.read_bytes()
    if data[:4] not in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
                        b"\xa1\xb2\x3c\x4d"):  # fmt: skip
        return False  # pcapng: scapy raises on a cut block
    little = data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
    order: Literal["little", "big"] = "little" if little else "big"
    offset = 24
    while offset < len(data):
        if offset + 16 > len(data):
            return True
        captured = int.from_bytes(data[offset + 8 : offset + 12], order)
        offset += 16 + captured
    return offset != len(data)


def read_capture(path: Path, secret: bytes) -> CaptureSummary:
    if not path.is_file():
        raise CaptureError(f"{path}: no such file")
    datagrams, truncated = _udp_datagrams(path)
    requests: dict[tuple[str, int, str, int, int], tuple[float, Packet, Exchange]] = {}
    seen: set[tuple[str, int, int, bytes]] = set()
    exchanges: list[Exchange] = []
    not_radius = 0
    unverified = 0
    for when, src, sport, dst, dport, payload in datagrams:
        try:
            decoded = parse(payload)
        except BadPacket:
            not_radius += 1
            continue
        if decoded.code == Code.ACCESS_REQUEST:
            key = (src, sport, decoded.id, decoded.authenticator)
            if key in seen:
                continue  # a retransmission in the capture
            seen.add(key)
            ma = message_authenticator_status(decoded, secret)
            exchange = access_exchange(decoded, secret, ma, when)
            requests[(src, sport, dst, dport, decoded.id)] = (when, decoded, exchange)
            exchanges.append(exchange)
        elif decoded.code in (Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE):
            pending = requests.get((dst, dport, src, sport, decoded.id))
            if pending is None:
                continue
            started, request, exchange = pending
            if not verify_reply(decoded, request.authenticator, secret):
                unverified += 1
                continue
            del requests[(dst, dport, src, sport, decoded.id)]
            exchange.reply_code = code_label(decoded.code)
            exchange.reply_attributes = decode_attributes(
                [(k, v) for k, v in decoded.attrs if k != Attr.MESSAGE_AUTHENTICATOR]
            )
            exchange.delay = max(0.0, when - started)
        else:
            not_radius += 1
    if unverified and not any(e.reply_code for e in exchanges):
        raise CaptureError(
            f"{path}: {unverified} RADIUS replies found, none verifies with this secret "
            "(wrong --secret?)"
        )
    if not exchanges:
        raise CaptureError(
            f"{path}: no RADIUS Access-Request among {len(datagrams)} UDP datagrams"
            + (" (the capture is truncated)" if truncated else "")
        )
    return CaptureSummary(exchanges, len(datagrams), not_radius, unverified, truncated)
