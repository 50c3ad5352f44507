"""The Twisted side: receive datagrams, ask the engine, answer on time, never crash.

RFC 5080 duplicate detection: a request with the same source, identifier and authenticator as
one already seen is a retransmission. It gets the cached reply (or joins the pending one) and
never reaches the engine, so it cannot advance the script or mint a new State.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.protocol import DatagramProtocol

from mock_radius import packets
from mock_radius.engine import Decision, Engine
from mock_radius.journal import Journal

DUPLICATE_WINDOW_SECONDS = 30.0
MA_REQUIRED = "Message-Authenticator required"

Address = tuple[str, int]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class _Seen:
    expires: float
    replies: list[bytes] | None = None  # None while a delayed reply is pending
    waiters: list[Address] = field(default_factory=list)
    dropped: bool = False


class MockRadiusProtocol(DatagramProtocol):
    def __init__(
        self,
        engine: Engine,
        journal: Journal,
        reactor: Any,  # IReactorTime; zope interfaces do not type-check under plain mypy
        *,
        clients: list[Network] | None = None,
        time_scale: float = 1.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.journal = journal
        self.reactor = reactor
        self.clients = clients or [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1")]
        self.time_scale = time_scale
        self.wall_clock = wall_clock
        self._seen: OrderedDict[tuple[str, int, int, bytes], _Seen] = OrderedDict()
        self.errors = 0
        self._allowed_hosts: dict[str, bool] = {}

    # plumbing

    def _send(self, datagrams: list[bytes], address: Address) -> None:
        transport: Any = self.transport
        if transport is None:
            return
        for datagram in datagrams:
            transport.write(datagram, address)

    def _log(self, address: Address, outcome: str, **fields: Any) -> dict[str, Any]:
        return self.journal.add(
            {
                "time": round(self.wall_clock(), 6),
                "source": f"{address[0]}:{address[1]}",
                "outcome": outcome,
                "timeScale": self.time_scale,
                **fields,
            }
        )

    def _allowed(self, host: str) -> bool:
        known = self._allowed_hosts.get(host)
        if known is None:
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                known = False
            else:
                known = any(ip in network for network in self.clients)
            if len(self._allowed_hosts) < 4096:
                self._allowed_hosts[host] = known
        return known

    def _expire(self, now: float) -> None:
        while self._seen:
            key, entry = next(iter(self._seen.items()))
            if entry.expires > now or entry.replies is None:
                break
            del self._seen[key]

    def reset(self) -> None:
        self._seen.clear()

    # receiving

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        address: Address = (str(addr[0]), int(addr[1]))
        try:
            self._receive(datagram, address)
        except Exception as exc:  # a bug must cost one packet, never the server
            self.errors += 1
            self._log(address, "internal-error", error=type(exc).__name__)

    def _receive(self, datagram: bytes, address: Address) -> None:
        if not self._allowed(address[0]):
            self._log(address, "dropped-unknown-source", length=len(datagram))
            return
        try:
            request = packets.decode(datagram)
        except packets.BadPacket as exc:
            self._log(address, "dropped-malformed", length=len(datagram), error=str(exc))
            return
        base = {
            "code": packets.CODE_NAMES.get(request.code, str(request.code)),
            "id": request.id,
        }
        if request.code != packets.ACCESS_REQUEST:
            self._log(address, "dropped-unsupported-code", **base)
            return
        values = packets.attribute_values(request)
        user = values.get("User-Name", [None])[0]
        base["user"] = user if isinstance(user, str) else None
        now = self.reactor.seconds()
        self._expire(now)
        key = (address[0], address[1], request.id, request.authenticator)
        seen = self._seen.get(key)
        if seen is not None:
            self._retransmission(seen, address, base)
            return
        base["attributes"] = packets.journal_attributes(values)
        scenario = self.engine.scenario_for(base["user"])
        if scenario is None:
            self._log(address, "dropped-no-scenario", **base)
            return
        secret = scenario.secret.encode("utf-8")
        ma = packets.message_authenticator_status(request, secret)
        base |= {"scenario": scenario.name, "messageAuthenticator": ma}
        if ma == "invalid":
            # cannot be authenticated: the client has another secret, or it was tampered with
            self._log(address, "dropped-bad-message-authenticator", **base)
            return
        view = packets.request_view(request, secret, ma, values)
        base["authType"] = view.auth_type
        if ma == "absent" and scenario.require_message_authenticator:
            decision = Decision(
                scenario.name, None, code=3, attributes=(("Reply-Message", MA_REQUIRED),)
            )
            outcome = "rejected-no-message-authenticator"
        else:
            decision = self.engine.decide(scenario, view)
            outcome = "mismatch" if decision.step is None else "matched"
        self._act(request, secret, decision, address, key, outcome, base)

    def _retransmission(self, seen: _Seen, address: Address, base: dict[str, Any]) -> None:
        if seen.dropped:
            self._log(address, "retransmission-dropped", **base)
        elif seen.replies is None:
            seen.waiters.append(address)
            self._log(address, "retransmission-pending", **base)
        else:
            self._send(seen.replies, address)
            self._log(address, "retransmission-answered-from-cache", **base)

    def _act(
        self,
        request: Any,
        secret: bytes,
        decision: Decision,
        address: Address,
        key: tuple[str, int, int, bytes],
        outcome: str,
        base: dict[str, Any],
    ) -> None:
        delay = decision.delay * self.time_scale
        fields: dict[str, Any] = {**base, "step": decision.step, "delay": delay}
        if decision.near_miss is not None:
            fields["nearMiss"] = {
                "step": decision.near_miss.step,
                "failed": list(decision.near_miss.failed),
            }
        now = self.reactor.seconds()
        if decision.drop:
            self._seen[key] = _Seen(now + DUPLICATE_WINDOW_SECONDS, dropped=True)
            self._log(address, "dropped-by-script", **fields)
            return
        assert decision.code is not None
        datagrams = packets.encode_reply(
            request, secret, decision.code, decision.attributes, decision.fault
        )
        fields["reply"] = {
            "code": packets.CODE_NAMES[decision.code],
            "attributes": packets.journal_attributes(packets.grouped(decision.attributes)),
            "fault": decision.fault,
        }
        seen = _Seen(now + delay + DUPLICATE_WINDOW_SECONDS)
        self._seen[key] = seen
        if delay <= 0:
            seen.replies = datagrams
            self._send(datagrams, address)
            self._log(address, outcome, sent=round(self.wall_clock(), 6), **fields)
            return
        entry = self._log(address, outcome, sent=None, **fields)
        ignore_retransmissions = decision.on_retransmit == "ignore"

        def send_later() -> None:
            seen.replies = datagrams
            self._send(datagrams, address)
            if not ignore_retransmissions:
                for waiter in seen.waiters:
                    self._send(datagrams, waiter)
            self.journal.update(entry["seq"], sent=round(self.wall_clock(), 6))

        self.reactor.callLater(delay, send_later)
