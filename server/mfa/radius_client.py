"""An asyncio RADIUS client (RFC 2865) on pyrad packets, strict about what it accepts.

Each exchange has its own UDP socket (so its own source port and identifier space), retransmits
the identical request (RFC 5080: same identifier and authenticator, so the server can tell a
retransmission from a new request), and tries the hostnames in order within one time budget.
A response counts only if its identifier matches, its Response Authenticator verifies, and its
Message-Authenticator verifies (and is present, unless the provider allows legacy servers) -
the BlastRADIUS (CVE-2024-3596) countermeasures.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import socket
import time
from dataclasses import dataclass, field

from pyrad import packet as rp

USER_NAME = 1
USER_PASSWORD = 2
CHAP_PASSWORD = 3
NAS_IP_ADDRESS = 4
REPLY_MESSAGE = 18
STATE = 24
SESSION_TIMEOUT = 27
NAS_IDENTIFIER = 32

ACCEPT = rp.AccessAccept
REJECT = rp.AccessReject
CHALLENGE = rp.AccessChallenge
RETRANSMISSIONS_PER_HOST = 3


@dataclass(frozen=True)
class RadiusResponse:
    code: int
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
    protocol: str = "CHAP"  # PAP or CHAP
    require_message_authenticator: bool = True
    nas_identifier: str | None = "appgate-sdp-controller"
    nas_ip_address: str | None = None


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable and friends
        pass


def build_request(
    target: RadiusTarget, user: str, password: str, state: bytes | None
) -> rp.AuthPacket:
    request = rp.AuthPacket(code=rp.AccessRequest, secret=target.secret)
    request.id = secrets.randbelow(256)
    request.authenticator = secrets.token_bytes(16)
    request[USER_NAME] = [user.encode("utf-8")]
    if target.protocol == "PAP":
        request[USER_PASSWORD] = [request.PwCrypt(password)]
    else:
        chap_id = secrets.token_bytes(1)
        digest = hashlib.md5(  # noqa: S324 - CHAP (RFC 1994) is defined with MD5
            chap_id + password.encode("utf-8") + request.authenticator
        ).digest()
        request[CHAP_PASSWORD] = [chap_id + digest]
    if state is not None:
        request[STATE] = [state]
    if target.nas_identifier:
        request[NAS_IDENTIFIER] = [target.nas_identifier.encode("utf-8")]
    if target.nas_ip_address:
        request[NAS_IP_ADDRESS] = [socket.inet_aton(target.nas_ip_address)]
    request.add_message_authenticator()
    return request


def _first(reply: rp.Packet, code: int) -> bytes | None:
    values = reply.get(code)
    return bytes(values[0]) if values else None


def verify_response(
    request: rp.AuthPacket, raw: bytes, require_ma: bool
) -> tuple[rp.Packet | None, str | None]:
    """The decoded response if it belongs to ``request`` and verifies; else why not."""
    if len(raw) < 20:
        return None, "a response too short to be RADIUS"
    if raw[1] != request.id:
        return None, "a response with another identifier"
    try:
        reply = rp.Packet(packet=raw, secret=request.secret)
    except Exception:
        return None, "a malformed response"
    if reply.code not in (ACCEPT, REJECT, CHALLENGE):
        return None, f"a response with unexpected code {reply.code}"
    if require_ma and 80 not in reply:
        return None, "a response without Message-Authenticator"
    if not request.VerifyReply(reply, raw, enforce_ma=require_ma):
        return None, "a response whose authenticators do not verify (wrong shared secret?)"
    return reply, None


async def _exchange_with(
    host: str,
    target: RadiusTarget,
    request: rp.AuthPacket,
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
    datagram = request.RequestPacket()
    interval = budget / RETRANSMISSIONS_PER_HOST
    deadline = started + budget
    next_send = started
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            if now >= next_send:
                transport.sendto(datagram)
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
            message = _first(reply, REPLY_MESSAGE)
            timeout = _first(reply, SESSION_TIMEOUT)
            return RadiusResponse(
                code=reply.code,
                host=host,
                elapsed=time.monotonic() - started,
                reply_message=message.decode("utf-8", "replace") if message else None,
                state=_first(reply, STATE),
                session_timeout=int.from_bytes(timeout, "big") if timeout else None,
            )
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
