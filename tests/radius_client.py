"""A small, strict RADIUS test client: requests built by pyrad, replies judged twice.

Why pyrad packets still, when the programs use ``radius_codec``: the mock parses and signs
with radius_codec, so requests built with it would let a codec bug hide at both ends of every
test. pyrad is a second implementation of the same RFCs (and what many real clients run), so
it builds the requests here. Replies are judged twice: by pyrad, and by
``rfc_reply_problems``, written here from the RFCs with neither pyrad nor radius_codec (the
oracle: an implementation bug must not hide in both), and ``Exchange.reply`` insists that they
agree. Only facts (codes, attribute types, sizes) come from radius_codec; tests/radius_codec/
test_codes.py pins them against pyrad and the dictionary.

pyrad's checks are called through the API pyrad 2.4 already has (the project's lower bound),
so these tests run on every pyrad the project allows.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import subprocess
import time
from dataclasses import dataclass, field

from pyrad import packet as rp

from radius_codec.codes import HEADER_LENGTH, MESSAGE_AUTHENTICATOR_LENGTH, Attr, Code
from radius_codec.dictionary import dictionary

_MA = Attr.MESSAGE_AUTHENTICATOR


def rfc_reply_problems(reply: bytes, request: bytes, secret: bytes) -> list[str]:
    """What is wrong with ``reply`` as an answer to ``request``, by the RFCs alone.

    RFC 2865 section 3: Length covers the packet; the Response Authenticator is
    MD5(Code + Identifier + Length + Request Authenticator + Attributes + Secret).
    RFC 3579 section 3.2: the Message-Authenticator is HMAC-MD5 keyed with the secret over the
    packet with the Request Authenticator in the Authenticator field and the
    Message-Authenticator's 16 octets set to zero. (For an Accounting-Response the Request
    Authenticator is the one the Accounting-Request carried, RFC 2866 section 3.)"""
    problems: list[str] = []
    if len(reply) < HEADER_LENGTH:
        return [f"{len(reply)} octets: shorter than a header"]
    length = reply[2] * 256 + reply[3]
    if length != len(reply):
        problems.append(f"Length field {length}, datagram {len(reply)} octets")
        return problems
    if reply[1] != request[1]:
        problems.append(f"identifier {reply[1]}, request {request[1]}")
    request_authenticator = request[4:20]
    digest = hashlib.md5(reply[:4] + request_authenticator + reply[20:] + secret).digest()
    if digest != reply[4:20]:
        problems.append("Response Authenticator does not verify")
    position, found = HEADER_LENGTH, []
    while position < length:
        if position + 2 > length or reply[position + 1] < 2:
            problems.append(f"attribute framing broken at octet {position}")
            return problems
        kind, size = reply[position], reply[position + 1]
        if kind == _MA:
            found.append(position)
        position += size
    if position != length:
        problems.append("attributes overrun the packet")
    if len(found) > 1:
        problems.append("more than one Message-Authenticator")
    for start in found[:1]:
        if reply[start + 1] != MESSAGE_AUTHENTICATOR_LENGTH:
            problems.append("Message-Authenticator of the wrong length")
            continue
        zeroed = (reply[:4] + request_authenticator + reply[20 : start + 2] + bytes(16)
                  + reply[start + 18 :])  # fmt: skip
        mac = hmac.new(secret, zeroed, hashlib.md5).digest()
        if mac != reply[start + 2 : start + 18]:
            problems.append("Message-Authenticator does not verify")
    return problems


def pyrad_verifies(request: rp.Packet, raw: bytes, *, enforce_ma: bool) -> bool:
    """pyrad's verdict on ``raw`` as the reply to ``request``: the Response Authenticator
    (VerifyReply), and the Message-Authenticator when there is one, or required. (pyrad from
    2.5 checks the latter inside VerifyReply too; 2.4 has only the separate call.)"""
    try:
        reply = rp.AuthPacket(packet=raw, secret=request.secret, dict=dictionary())
        if not request.VerifyReply(reply, raw):
            return False
        if _MA not in reply:
            return not enforce_ma
        return bool(
            reply.verify_message_authenticator(
                secret=request.secret,
                original_authenticator=request.authenticator,
                original_code=request.code,
            )
        )
    except Exception:  # pyrad raises several types for packets it cannot decode
        return False


@dataclass
class Exchange:
    request: rp.AuthPacket
    datagrams: list[bytes] = field(default_factory=list)
    elapsed: float = 0.0
    raw_request: bytes | None = None  # the octets sent

    def reply(self, enforce_ma: bool = True) -> rp.AuthPacket | None:
        """The first datagram that decodes and verifies against the request, else None.
        pyrad's verdict and the RFC check of this module must agree."""
        sent = self.request.RequestPacket() if self.raw_request is None else self.raw_request
        for raw in self.datagrams:
            problems = rfc_reply_problems(raw, sent, self.request.secret)
            if enforce_ma and not any(raw[i] == _MA for i in _attribute_offsets(raw)):
                problems.append("no Message-Authenticator")
            valid = pyrad_verifies(self.request, raw, enforce_ma=enforce_ma)
            assert valid == (not problems), (
                f"pyrad says {'valid' if valid else 'invalid'}, the RFC check says {problems}"
            )
            if valid:
                return rp.AuthPacket(packet=raw, secret=self.request.secret, dict=dictionary())
        return None


def _attribute_offsets(raw: bytes) -> list[int]:
    offsets, position = [], HEADER_LENGTH
    while position + 2 <= len(raw) and raw[position + 1] >= 2:
        offsets.append(position)
        position += raw[position + 1]
    return offsets


def build_request(
    secret: str,
    user: str,
    password: str | None = None,
    *,
    state: bytes | None = None,
    chap: bool = False,
    message_authenticator: bool = True,
    proxy_states: list[bytes] | None = None,
    extra: dict[str, object] | None = None,
) -> rp.AuthPacket:
    request = rp.AuthPacket(code=Code.ACCESS_REQUEST, secret=secret.encode(), dict=dictionary())
    request.authenticator = request.CreateAuthenticator()
    request["User-Name"] = user
    if password is not None:
        if chap:
            chap_id = b"\x07"
            digest = hashlib.md5(chap_id + password.encode() + request.authenticator).digest()
            request["CHAP-Password"] = chap_id + digest
        else:
            request["User-Password"] = request.PwCrypt(password)
    if state is not None:
        request["State"] = state
    for proxy_state in proxy_states or []:
        request.AddAttribute("Proxy-State", proxy_state)
    for name, value in (extra or {}).items():
        request[name] = value
    if message_authenticator:
        request.add_message_authenticator()
    return request


def send(
    address: tuple[str, int],
    request: rp.AuthPacket,
    *,
    timeout: float = 3.0,
    expect: int = 1,
    sock: socket.socket | None = None,
) -> Exchange:
    """Send once and collect up to ``expect`` datagrams until ``timeout``."""
    own = sock is None
    udp = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw = request.RequestPacket()
    exchange = Exchange(request, raw_request=raw)
    started = time.monotonic()
    try:
        udp.sendto(raw, address)
        deadline = started + timeout
        while len(exchange.datagrams) < expect:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            udp.settimeout(remaining)
            try:
                data, _ = udp.recvfrom(65535)  # any datagram: a too long one shows as it is
            except TimeoutError:
                break
            exchange.datagrams.append(data)
            exchange.elapsed = time.monotonic() - started
    finally:
        if own:
            udp.close()
    return exchange


@dataclass
class RadclientResult:
    returncode: int
    output: str
    elapsed: float

    def received(self) -> str | None:
        for line in self.output.splitlines():
            if line.startswith("Received "):
                return line.split()[1]
        return None

    def attribute(self, name: str) -> str | None:
        """The attribute's value in the reply (radclient -x prints the request first)."""
        received = self.output.split("\nReceived ", 1)
        if len(received) < 2:
            return None
        for line in received[1].splitlines()[1:]:
            stripped = line.strip()
            if stripped.startswith(f"{name} = "):
                return stripped.split(" = ", 1)[1].strip('"')
        return None


def radclient(
    address: tuple[str, int],
    secret: str,
    attributes: dict[str, str],
    *,
    timeout: float = 2.0,
    retries: int = 1,
    command: str = "auth",
) -> RadclientResult:
    """FreeRADIUS's own radclient: a client that shares no code with this project.

    ``command`` is auth, acct or status; ``retries`` counts sends (radclient refuses 0).
    radclient adds a Message-Authenticator only when asked (``Message-Authenticator = 0x00``),
    also to Status-Server."""
    assert retries >= 1
    pairs = ", ".join(f"{name} = {value}" for name, value in attributes.items())
    started = time.monotonic()
    result = subprocess.run(
        [
            "radclient", "-x", "-t", str(timeout), "-r", str(retries),
            f"{address[0]}:{address[1]}", command, secret,
        ],
        input=pairs + "\n",
        capture_output=True,
        text=True,
        timeout=timeout * (retries + 1) + 10,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "Sent " in output, output  # it really ran and sent something
    return RadclientResult(result.returncode, output, time.monotonic() - started)
