# -*- test-case-name: tests.test_radius_wire, tests.test_radius_units -*-
"""An asyncio RADIUS client (RFC 2865) on the project's codec, strict about what it accepts.

Each exchange has its own UDP socket (so its own source port and identifier space), retransmits
the identical request (RFC 5080: same identifier and authenticator, so the server can tell a
retransmission from a new request), and tries the hostnames in order within one time budget.
Every request carries a Message-Authenticator, first. A response counts only if its identifier
matches, its Response Authenticator verifies, its Message-Authenticator verifies (and is
present, unless the provider allows legacy servers) and it carries no Proxy-State (none was
sent) - the BlastRADIUS (CVE-2024-3596) countermeasures. Octets past a response's Length field
are padding and ignored (RFC 2865 section 3).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from dataclasses import dataclass, field

from radius_codec.authenticators import (
    MaStatus,
    message_authenticator_status,
    response_authenticator_ok,
    sign_request,
)
from radius_codec.codes import AUTHENTICATOR_LENGTH, Attr, Code
from radius_codec.packet import BadPacket, Packet, encode_pairs, parse
from radius_codec.passwords import AuthProtocol, chap_response, pap_hide

ANSWERS = (Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE)
RETRANSMISSIONS_PER_HOST = 3
_SESSION_TIMEOUT_LENGTH = 4  # an integer attribute (RFC 2865 section 5.27)


@dataclass(frozen=True)
class RadiusResponse:
    code: Code
    host: str
    elapsed: float
    reply_message: str | None = None
    state: bytes | None = None
    session_timeout: int | None = None


@dataclass
class NoAnswer(Exception):
    """No acceptable response within the budget; ``invalid`` lists responses that were dropped."""

    tried: list[str]
    budget: float
    invalid: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        hosts = ", ".join(self.tried)
        if self.invalid:
            return f"No valid RADIUS response within {self.budget:g} s from {hosts}: " + "; ".join(
                sorted(set(self.invalid))
            )
        return f"No RADIUS server answered within {self.budget:g} s (tried {hosts})."


@dataclass(frozen=True)
class RadiusTarget:
    hostnames: tuple[str, ...]
    port: int
    secret: bytes
    timeout: float
    protocol: AuthProtocol = AuthProtocol.CHAP
    require_message_authenticator: bool = True
    nas_identifier: str | None = "appgate-sdp-controller"
    nas_ip_address: str | None = None


@dataclass(frozen=True)
class AccessRequest:
    """The octets sent, and what a response must be checked against."""

    raw: bytes
    secret: bytes

    @property
    def id(self) -> int:
        return self.raw[1]

    @property
    def authenticator(self) -> bytes:
        return self.raw[4 : 4 + AUTHENTICATOR_LENGTH]


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable and friends
        pass


def build_request(
    target: RadiusTarget, user: str, password: str, state: bytes | None
) -> AccessRequest:
    """A new Access-Request: random identifier and Request Authenticator; the password as a
    PAP User-Password (at most 128 octets: the provider refuses longer ones before this) or a
    CHAP-Password over the Request Authenticator."""
    authenticator = secrets.token_bytes(AUTHENTICATOR_LENGTH)
    clear = password.encode("utf-8")
    pairs = [(Attr.USER_NAME, user.encode("utf-8"))]
    if target.protocol == AuthProtocol.PAP:
        pairs.append((Attr.USER_PASSWORD, pap_hide(clear, target.secret, authenticator)))
    else:
        response = chap_response(secrets.randbelow(256), clear, authenticator)
        pairs.append((Attr.CHAP_PASSWORD, response))
    if state is not None:
        pairs.append((Attr.STATE, state))
    if target.nas_identifier:
        pairs.append((Attr.NAS_IDENTIFIER, target.nas_identifier.encode("utf-8")))
    if target.nas_ip_address:
        pairs.append((Attr.NAS_IP_ADDRESS, socket.inet_aton(target.nas_ip_address)))
    raw = sign_request(secrets.randbelow(256), authenticator, encode_pairs(pairs), target.secret)
    return AccessRequest(raw, target.secret)


def verify_response(
    request: AccessRequest, raw: bytes, require_ma: bool
) -> tuple[Packet | None, str | None]:
    """The parsed response if it belongs to ``request`` and verifies; else why not."""
    try:
        reply = parse(raw)
    except BadPacket as exc:
        return None, f"a malformed response ({exc})"
    if reply.id != request.id:
        return None, "a response with another identifier"
    if reply.code not in ANSWERS:
        return None, f"a response with unexpected code {reply.code}"
    if not response_authenticator_ok(reply, request.authenticator, request.secret):
        return (
            None,
            "a response whose Response Authenticator does not verify (wrong shared secret?)",
        )
    ma = message_authenticator_status(reply, request.secret, request.authenticator)
    if ma is MaStatus.INVALID:
        return None, "a response whose Message-Authenticator does not verify"
    if ma is MaStatus.ABSENT and require_ma:
        return None, "a response without Message-Authenticator"
    if reply.first(Attr.PROXY_STATE) is not None:
        return None, "a response with a Proxy-State the request did not carry"
    return reply, None


def _response(reply: Packet, host: str, elapsed: float) -> RadiusResponse:
    message = reply.first(Attr.REPLY_MESSAGE)
    timeout = reply.first(Attr.SESSION_TIMEOUT)
    return RadiusResponse(
        code=Code(reply.code),
        host=host,
        elapsed=elapsed,
        reply_message=message.decode("utf-8", "replace") if message else None,
        state=reply.first(Attr.STATE),
        session_timeout=(
            int.from_bytes(timeout, "big")
            if timeout is not None and len(timeout) == _SESSION_TIMEOUT_LENGTH
            else None
        ),
    )


async def _exchange_with(
    host: str,
    target: RadiusTarget,
    request: AccessRequest,
    budget: float,
    invalid: list[str],
) -> RadiusResponse | None:
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        transport, receiver = await loop.create_datagram_endpoint(
            _Receiver, remote_addr=(host, target.port)
        )
    except OSError as exc:
        invalid.append(f"{host}: {exc.strerror or exc}")
        return None
    interval = budget / RETRANSMISSIONS_PER_HOST
    deadline = started + budget
    next_send = started
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            if now >= next_send:
                transport.sendto(request.raw)
                next_send = now + interval
            try:
                raw = await asyncio.wait_for(
                    receiver.queue.get(), min(next_send, deadline) - time.monotonic()
                )
            except TimeoutError:
                continue
            reply, problem = verify_response(request, raw, target.require_message_authenticator)
            if reply is None:
                invalid.append(f"{host} sent {problem}")
                continue
            return _response(reply, host, time.monotonic() - started)
    finally:
        transport.close()


async def authenticate(
    target: RadiusTarget,
    user: str,
    password: str,
    *,
    state: bytes | None = None,
    hosts: tuple[str, ...] | None = None,
) -> RadiusResponse:
    """One Access-Request, answered by the first host that gives a valid response.

    The whole call never takes longer than ``target.timeout`` (plus scheduling); each host gets
    an equal share of it. A State is only meaningful to the host that issued it, so a
    continuation passes ``hosts`` with that host alone.
    """
    order = hosts or target.hostnames
    share = target.timeout / len(order)
    invalid: list[str] = []
    tried: list[str] = []
    for host in order:
        tried.append(f"{host}:{target.port}")
        request = build_request(target, user, password, state)
        response = await _exchange_with(host, target, request, share, invalid)
        if response is not None:
            return response
    raise NoAnswer(tried, target.timeout, invalid)
