"""The server's RADIUS client on the wire, judged by a UDP peer written here from the RFCs, not
with radius_codec (which the client and the mock both use, so a codec bug would hide in both);
only the numbers (codes, attribute types) come from radius_codec.

RFC 2865: Code, Identifier, Length, Authenticator, then attributes (type, length, value). The
Response Authenticator is MD5(Code | Identifier | Length | Request Authenticator | Attributes |
Secret). RFC 3579 3.2: the Message-Authenticator is HMAC-MD5 keyed with the secret over the
whole packet with the Message-Authenticator's value zeroed (and, in a reply, the Request
Authenticator in the authenticator field).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pyrad import packet as rp

from appgate_mfa_server.config import RadiusProvider
from appgate_mfa_server.mfa import radius_client as rc
from appgate_mfa_server.mfa.base import Accepted, Unavailable
from appgate_mfa_server.mfa.radius import RadiusMfa
from appgate_mfa_server.mfa.sealed_state import StateSealer, derive_key
from appgate_mfa_server.users import UserInfo
from radius_codec.codes import Attr, Code
from radius_codec.dictionary import dictionary
from radius_codec.passwords import AuthProtocol

SECRET = b"wire-secret"
ACCESS_REQUEST, ACCESS_ACCEPT = Code.ACCESS_REQUEST, Code.ACCESS_ACCEPT
MESSAGE_AUTHENTICATOR, NAS_IP_ADDRESS = Attr.MESSAGE_AUTHENTICATOR, Attr.NAS_IP_ADDRESS
NAS_IDENTIFIER, USER_NAME, REPLY_MESSAGE = Attr.NAS_IDENTIFIER, Attr.USER_NAME, Attr.REPLY_MESSAGE
SESSION_TIMEOUT = Attr.SESSION_TIMEOUT


def attributes_of(packet: bytes) -> list[tuple[int, bytes]]:
    found, offset = [], 20
    while offset < len(packet):
        kind, length = packet[offset], packet[offset + 1]
        found.append((kind, packet[offset + 2 : offset + length]))
        offset += length
    return found


def request_ma_is_valid(packet: bytes, secret: bytes) -> bool:
    """RFC 3579 3.2 for an Access-Request."""
    offset = 20
    while offset < len(packet):
        kind, length = packet[offset], packet[offset + 1]
        if kind == MESSAGE_AUTHENTICATOR:
            zeroed = packet[: offset + 2] + bytes(16) + packet[offset + 18 :]
            expected = hmac.new(secret, zeroed, hashlib.md5).digest()
            return hmac.compare_digest(expected, packet[offset + 2 : offset + 18])
        offset += length
    return False


def reply(request: bytes, secret: bytes, code: int = ACCESS_ACCEPT, *, with_ma: bool = True,
          break_ma: bool = False, extra: bytes = b"") -> bytes:  # fmt: skip
    """A reply built by hand; ``break_ma`` spoils only the Message-Authenticator (the Response
    Authenticator is computed over the spoiled value, so it alone is wrong)."""
    identifier, request_auth = request[1], request[4:20]
    attributes = b""
    if with_ma:
        attributes += bytes([MESSAGE_AUTHENTICATOR, 18]) + bytes(16)
    attributes += bytes([REPLY_MESSAGE, 9]) + b"Welcome" + extra
    length = 20 + len(attributes)
    packet = bytearray(struct.pack("!BBH", code, identifier, length) + request_auth + attributes)
    if with_ma:
        mac = hmac.new(secret, bytes(packet), hashlib.md5).digest()
        if break_ma:
            mac = bytes([mac[0] ^ 1]) + mac[1:]
        packet[22:38] = mac
    header = bytes(packet[:4])
    packet[4:20] = hashlib.md5(header + request_auth + bytes(packet[20:]) + secret).digest()
    return bytes(packet)


@dataclass
class Peer(asyncio.DatagramProtocol):
    """A RADIUS server on loopback that records what it gets and answers with ``answer``."""

    answer: Callable[[bytes], bytes | None]
    received: list[tuple[float, bytes]] = field(default_factory=list)
    transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append((time.monotonic(), data))
        out = self.answer(data)
        if out is not None:
            self.transport.sendto(out, addr)


async def _with_peer(answer: Callable[[bytes], bytes | None],
                     test: Callable[[int, Peer], Any]) -> Any:  # fmt: skip
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(
        lambda: Peer(answer), local_addr=("127.0.0.1", 0)
    )
    try:
        return await test(transport.get_extra_info("sockname")[1], peer)
    finally:
        transport.close()


def _target(port: int, **changes: Any) -> rc.RadiusTarget:
    settings: dict[str, Any] = {"timeout": 1.5, "protocol": AuthProtocol.PAP, **changes}
    return rc.RadiusTarget(hostnames=("127.0.0.1",), port=port, secret=SECRET, **settings)


def test_every_request_carries_a_valid_message_authenticator_and_the_nas_attributes() -> None:
    async def test(port: int, peer: Peer) -> None:
        target = _target(port, nas_identifier="appgate-test", nas_ip_address="192.0.2.7")
        response = await rc.authenticate(target, "carol", "pw")
        assert response.code == ACCESS_ACCEPT and response.reply_message == "Welcome"
        (_, request), = peer.received  # fmt: skip
        assert request[0] == ACCESS_REQUEST
        assert request_ma_is_valid(request, SECRET)
        assert not request_ma_is_valid(request, b"another secret")
        attrs = attributes_of(request)
        assert [kind for kind, _ in attrs].count(MESSAGE_AUTHENTICATOR) == 1
        assert (USER_NAME, b"carol") in attrs
        assert (NAS_IDENTIFIER, b"appgate-test") in attrs
        assert (NAS_IP_ADDRESS, socket.inet_aton("192.0.2.7")) in attrs

    asyncio.run(_with_peer(lambda r: reply(r, SECRET), test))


def test_the_session_timeout_of_a_reply_is_read() -> None:
    session_timeout = bytes([SESSION_TIMEOUT, 6]) + (90).to_bytes(4, "big")

    async def test(port: int, peer: Peer) -> None:
        started = time.monotonic()
        response = await rc.authenticate(_target(port), "carol", "pw")
        around = time.monotonic() - started
        assert (response.reply_message, response.session_timeout) == ("Welcome", 90)
        assert 0 <= response.elapsed <= around  # measured from the first send, inside the call

    asyncio.run(_with_peer(lambda r: reply(r, SECRET, extra=session_timeout), test))


def test_without_nas_ip_address_none_is_sent() -> None:
    async def test(port: int, peer: Peer) -> None:
        await rc.authenticate(_target(port), "carol", "pw")
        assert NAS_IP_ADDRESS not in [kind for kind, _ in attributes_of(peer.received[0][1])]

    asyncio.run(_with_peer(lambda r: reply(r, SECRET), test))


@pytest.mark.slow
def test_a_silent_server_gets_exactly_three_identical_requests_spread_over_the_budget() -> None:
    async def test(port: int, peer: Peer) -> None:
        started = time.monotonic()
        with pytest.raises(rc.NoAnswer):
            await rc.authenticate(_target(port), "tina", "pw")
        elapsed = time.monotonic() - started
        sent = [data for _, data in peer.received]
        assert len(sent) == rc.RETRANSMISSIONS_PER_HOST == 3
        assert len(set(sent)) == 1  # a retransmission is the identical datagram (RFC 5080)
        gaps = [b[0] - a[0] for a, b in zip(peer.received, peer.received[1:], strict=False)]
        # one third of the budget apart, measured against this run's own elapsed time
        assert all(abs(gap - elapsed / 3) < elapsed / 6 for gap in gaps), (gaps, elapsed)

    asyncio.run(_with_peer(lambda r: None, test))


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (lambda r: reply(r, SECRET, break_ma=True), "Message-Authenticator does not verify"),
        (lambda r: reply(r, b"not the secret"), "Response Authenticator does not verify"),
        (lambda r: reply(r, SECRET, with_ma=False), "without Message-Authenticator"),
        (lambda r: reply(r, SECRET, code=5), "unexpected code 5"),
    ],
    ids=[
        "only the Message-Authenticator spoiled",
        "another secret",
        "no Message-Authenticator",
        "an Accounting-Response",
    ],
)
def test_forged_replies_are_dropped_with_the_reason(answer: Callable[[bytes], bytes],
                                                    why: str) -> None:  # fmt: skip
    async def test(port: int, peer: Peer) -> None:
        with pytest.raises(rc.NoAnswer) as failure:
            await rc.authenticate(_target(port, timeout=0.6), "mallory", "pw")
        assert failure.value.invalid and all(why in problem for problem in failure.value.invalid)

    asyncio.run(_with_peer(answer, test))


def _provider(port: int, **settings: Any) -> RadiusProvider:
    base = {"name": "r", "type": "Radius", "hostnames": ["127.0.0.1"], "port": port,
            "sharedSecret": SECRET.decode(), "timeout": 0.6, "mode": "OneFactor"}  # fmt: skip
    return RadiusProvider.model_validate({**base, **settings})


@pytest.mark.parametrize("required", [True, False])
def test_the_require_message_authenticator_setting_is_honoured(required: bool) -> None:
    """A legacy server that never sends one: refused by default, accepted when allowed."""

    async def test(port: int, peer: Peer) -> object:
        sealer = StateSealer(derive_key(b"k" * 32))
        config = _provider(port, requireMessageAuthenticator=required)
        provider = RadiusMfa(config, sealer=sealer, clock=time.time)
        return await provider.verify(UserInfo("corp", "olga", False, "r"), "654321", None, None)

    verdict = asyncio.run(_with_peer(lambda r: reply(r, SECRET, with_ma=False), test))
    if required:
        assert isinstance(verdict, Unavailable) and verdict.invalid
        assert "without Message-Authenticator" in verdict.message
    else:
        assert isinstance(verdict, Accepted)


def test_a_reply_with_padding_past_its_length_is_accepted() -> None:
    """RFC 2865 section 3: octets past the Length field are padding, to be ignored."""

    async def test(port: int, peer: Peer) -> None:
        response = await rc.authenticate(_target(port), "carol", "pw")
        assert (response.code, response.reply_message) == (ACCESS_ACCEPT, "Welcome")

    asyncio.run(_with_peer(lambda r: reply(r, SECRET) + bytes(12), test))


@pytest.mark.parametrize("protocol", ["PAP", "CHAP"])
def test_the_peer_here_and_pyrad_agree_with_the_client(protocol: str) -> None:
    """The hand-written checks above are right, and so is the client by a second
    implementation: pyrad decodes the request, reveals the PAP password and verifies the
    Message-Authenticator; the hand-built reply passes the client's verification."""
    target = _target(1812, protocol=AuthProtocol(protocol))
    request = rc.build_request(target, "carol", "pw", b"up")
    assert request_ma_is_valid(request.raw, SECRET)
    decoded = rp.AuthPacket(packet=request.raw, secret=SECRET, dict=dictionary())
    assert decoded.verify_message_authenticator()
    assert (decoded["User-Name"], decoded["State"]) == (["carol"], [b"up"])
    if protocol == "PAP":
        assert decoded.PwDecrypt(decoded["User-Password"][0]) == "pw"
    else:  # RFC 2865 section 2.2 (pyrad 2.4 gets identifiers over 127 wrong)
        (response,) = decoded["CHAP-Password"]
        assert response[1:] == hashlib.md5(response[:1] + b"pw" + request.authenticator).digest()
    parsed, problem = rc.verify_response(request, reply(request.raw, SECRET), True)
    assert problem is None and parsed is not None and parsed.code == ACCESS_ACCEPT
