"""A small, strict RADIUS test client on pyrad packets and a plain UDP socket."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field

from pyrad import packet as rp

from mock_radius.scenario import dictionary


@dataclass
class Exchange:
    request: rp.AuthPacket
    datagrams: list[bytes] = field(default_factory=list)
    elapsed: float = 0.0

    def reply(self, enforce_ma: bool = True) -> rp.AuthPacket | None:
        """The first datagram that decodes and verifies against the request, else None."""
        for raw in self.datagrams:
            try:
                reply = rp.AuthPacket(packet=raw, secret=self.request.secret, dict=dictionary())
            except Exception:
                continue
            if self.request.VerifyReply(reply, raw, enforce_ma=enforce_ma):
                return reply
        return None


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
    request = rp.AuthPacket(code=rp.AccessRequest, secret=secret.encode(), dict=dictionary())
    request.authenticator = request.CreateAuthenticator()
    request["User-Name"] = user
    if password is not None:
        if chap:
            import hashlib

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
    exchange = Exchange(request)
    started = time.monotonic()
    try:
        udp.sendto(request.RequestPacket(), address)
        deadline = started + timeout
        while len(exchange.datagrams) < expect:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            udp.settimeout(remaining)
            try:
                data, _ = udp.recvfrom(4096)
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
        for line in self.output.splitlines():
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
) -> RadclientResult:
    """FreeRADIUS's own radclient: a client that shares no code with this project.

    ``retries`` counts sends (radclient refuses 0)."""
    assert retries >= 1
    pairs = ", ".join(f"{name} = {value}" for name, value in attributes.items())
    started = time.monotonic()
    result = subprocess.run(
        [
            "radclient", "-x", "-t", str(timeout), "-r", str(retries),
            f"{address[0]}:{address[1]}", "auth", secret,
        ],
        input=pairs + "\n",
        capture_output=True,
        text=True,
        timeout=timeout * (retries + 1) + 10,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "Sent Access-Request" in output, output  # it really ran and sent something
    return RadclientResult(result.returncode, output, time.monotonic() - started)
