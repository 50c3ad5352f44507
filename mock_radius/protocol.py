# -*- test-case-name: tests.test_mock_protocol, tests.test_mock_units -*-
"""The Twisted side: receive datagrams, ask the engine, answer on time, never crash.

Each datagram goes through small steps (source, parse, code, duplicate, scenario,
authentication, decision, answer); the step that settles it journals one entry and returns
its ``Outcome``. A retransmission of an answered or pending request (``dedup``) never
reaches the engine, so it cannot advance a script or mint a new State; one of a request the
script dropped does (drops count per transmission).
"""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from twisted.internet.protocol import DatagramProtocol

from mock_radius.dedup import DEFAULT_MAX_PENDING, DuplicateCache, Seen, key_of
from mock_radius.dedup import Entry as Cached
from mock_radius.engine import Decision, Engine
from mock_radius.journal import Entry, Journal
from mock_radius.outcome import Outcome
from mock_radius.replies import accounting_reply, build_reply, status_reply
from mock_radius.request_view import view
from mock_radius.scenario import Scenario
from radius_codec.authenticators import (
    MaStatus,
    accounting_request_ok,
    message_authenticator_status,
)
from radius_codec.codes import MAX_PACKET_LENGTH, Code
from radius_codec.packet import BadPacket, Packet, parse

MAX_NOTICES = 100
# the members as module names: on the per-packet path an enum class's attribute costs ~70 ns
_STATUS_SERVER = Code.STATUS_SERVER
_ABSENT, _VALID, _INVALID = MaStatus.ABSENT, MaStatus.VALID, MaStatus.INVALID

Address = tuple[str, int]
Key = tuple[bytes, int]  # the duplicate-cache key of a request, and which transmission this is
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Notices:
    """One line on stderr per unknown user (at most ``MAX_NOTICES``), so a user that no
    scenario covers is not dropped in silence."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._told: set[str] = set()

    def unknown_user(self, user: str | None) -> None:
        name = user or ""
        if name in self._told or len(self._told) > MAX_NOTICES:
            return
        self._told.add(name)
        line: dict[str, str | None]
        if len(self._told) > MAX_NOTICES:
            line = {"event": "unknown-users", "message": f"more than {MAX_NOTICES} unknown "
                    "users; see the journal (outcome dropped-no-scenario)"}  # fmt: skip
        else:
            line = {"event": "unknown-user", "user": user, "message": "no scenario lists this "
                    "User-Name and none is active: requests are dropped"}  # fmt: skip
        print(json.dumps(line), file=self.stream or sys.stderr, flush=True)


class _Port(DatagramProtocol):
    """What the auth and accounting ports share: the steps before a scenario decides."""

    request_code = Code.ACCESS_REQUEST
    status_code = Code.ACCESS_ACCEPT

    def __init__(self, server: MockRadiusProtocol) -> None:
        self.server = server
        self.dedup = DuplicateCache()

    # plumbing

    def _send(self, datagrams: list[bytes], address: Address) -> None:
        """To the socket itself when there is one: the address came from recvfrom, and
        Twisted's write() spends ~3 us per datagram validating it as an IP address string."""
        transport: Any = self.transport
        if transport is None:
            return
        sock = getattr(transport, "socket", None)
        for datagram in datagrams:
            if sock is None:
                transport.write(datagram, address)
                continue
            try:
                sock.sendto(datagram, address)
            except OSError:  # a full socket buffer or an ICMP error: UDP may lose a reply
                self.server.lost_replies += 1

    def _journal(self, address: Address, outcome: Outcome, **fields: Any) -> Outcome:
        self.server.journal.add(Entry(self.server.wall_clock(), address, outcome, **fields))
        return outcome

    def _summary(self, request: Packet, address: Address, outcome: Outcome,
                 **fields: Any) -> Outcome:  # fmt: skip
        return self._journal(address, outcome, code=request.code, id=request.id,
                             user=request.user_name, length=len(request.raw), **fields)  # fmt: skip

    # the steps

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        address: Address = (str(addr[0]), int(addr[1]))
        try:
            self.handle(datagram, address)
        except Exception as exc:  # a bug must cost one packet, never the server
            self.server.errors += 1
            self._journal(address, Outcome.INTERNAL_ERROR, length=len(datagram),
                          error=type(exc).__name__)  # fmt: skip

    def handle(self, datagram: bytes, address: Address) -> Outcome:
        if not self.server.allowed(address[0]):
            return self._journal(address, Outcome.DROPPED_UNKNOWN_SOURCE, length=len(datagram))
        try:
            request = parse(datagram)
        except BadPacket as exc:
            return self._journal(address, Outcome.DROPPED_MALFORMED, length=len(datagram),
                                 error=str(exc))  # fmt: skip
        if request.code == _STATUS_SERVER:
            return self._status_server(request, address)
        if request.code != self.request_code:
            return self._summary(request, address, Outcome.DROPPED_UNSUPPORTED_CODE)
        now = self.server.reactor.seconds()
        key = key_of(address[0], address[1], request.id, request.authenticator)
        cached = self.dedup.get(key, now)
        transmission = 1
        if cached is not None:
            if cached.seen is not Seen.LOST:
                return self._retransmission(cached, request, address)
            transmission = cached.transmissions + 1  # a drop lost only the one before
        scenario = self.server.engine.scenario_for(request.user_name)
        if scenario is None:
            self.server.notices.unknown_user(request.user_name)
            return self._summary(request, address, Outcome.DROPPED_NO_SCENARIO)
        return self.serve(request, address, (key, transmission), scenario, now)

    def _status_server(self, request: Packet, address: Address) -> Outcome:
        """RFC 5997: signed with the secret its Message-Authenticator verifies with."""
        if request.ma_offset < 0:
            return self._summary(request, address, Outcome.DROPPED_NO_MESSAGE_AUTHENTICATOR)
        secret = next(
            (s for s in self.server.engine.secrets
             if message_authenticator_status(request, s) is _VALID),
            None,
        )  # fmt: skip
        if secret is None:
            return self._summary(request, address, Outcome.DROPPED_BAD_MESSAGE_AUTHENTICATOR)
        reply = status_reply(request, secret, self.status_code)
        now = self.server.wall_clock()
        self._send([reply], address)
        self.server.journal.add(Entry(now, address, Outcome.STATUS_SERVER, None, None, _VALID,
                                      code=request.code, id=request.id, reply=reply, replies=1,
                                      sent=now))  # fmt: skip
        return Outcome.STATUS_SERVER

    def _retransmission(self, cached: Cached, request: Packet, address: Address) -> Outcome:
        if cached.seen is Seen.ANSWERED and cached.reply is not None:
            self._send([cached.reply], address)
            return self._summary(request, address, Outcome.RETRANSMISSION_FROM_CACHE)
        outcome = {
            Seen.PENDING: Outcome.RETRANSMISSION_PENDING,
            Seen.IGNORED: Outcome.RETRANSMISSION_IGNORED,
        }.get(cached.seen, Outcome.RETRANSMISSION_DROPPED)
        return self._summary(request, address, outcome)

    def serve(self, request: Packet, address: Address, key: Key, scenario: Scenario,
              now: float) -> Outcome:  # fmt: skip
        raise NotImplementedError

    def build(self, request: Packet, secret: bytes, decision: Decision) -> list[bytes]:
        raise NotImplementedError

    def answer(
        self,
        request: Packet,
        address: Address,
        keyed: Key,
        secret: bytes,
        decision: Decision,
        outcome: Outcome,
        ma: MaStatus,
        now: float,
    ) -> Outcome:
        """Send the decided reply now or after its delay, or nothing; journal it."""
        server = self.server
        key, transmission = keyed
        delay = decision.delay * server.time_scale
        entry = Entry(server.wall_clock(), address, outcome, request.raw, decision, ma,
                      code=request.code, id=request.id, user=request.user_name,
                      transmission=transmission)  # fmt: skip
        if decision.drop or decision.template is None:
            if decision.step is not None:
                entry.outcome = Outcome.DROPPED_BY_SCRIPT
            # this transmission is lost; a retransmission goes to the script again
            self.dedup.answered(key, Seen.LOST, None, now, transmission)
            return server.journal.add(entry).outcome
        datagrams = self.build(request, secret, decision)
        first = datagrams[0]
        if len(first) > MAX_PACKET_LENGTH:
            entry.outcome = Outcome.REPLY_TOO_LONG
            entry.error = f"the reply has {len(first)} octets"
            self.dedup.answered(key, Seen.DROPPED, None, now)
            return server.journal.add(entry).outcome
        entry.set_reply(first, len(datagrams))
        seen = Seen.ANSWERED if decision.on_retransmit == "same" else Seen.IGNORED
        if delay <= 0:
            self._send(datagrams, address)
            self.dedup.answered(key, seen, first, now)
            entry.sent = entry.time
            return server.journal.add(entry).outcome
        pending = self.dedup.start_pending(key)
        if pending is None:
            return self._summary(request, address, Outcome.DROPPED_OVERLOAD)
        server.journal.add(entry)
        server.reactor.callLater(delay, self._send_later, pending, seen, datagrams, address,
                                 entry)  # fmt: skip
        return entry.outcome

    def _send_later(self, pending: Cached, seen: Seen, datagrams: list[bytes], address: Address,
                    entry: Entry) -> None:  # fmt: skip
        """The delayed reply, once, to the address that asked (RFC 5080: retransmissions
        that came meanwhile were discarded)."""
        self._send(datagrams, address)
        self.dedup.finish(pending, seen, datagrams[0], self.server.reactor.seconds())
        self.server.journal.mark_sent(entry, self.server.wall_clock())


class MockRadiusProtocol(_Port):
    """The authentication port (Access-Request, Status-Server); holds what both ports share."""

    def __init__(
        self,
        engine: Engine,
        journal: Journal,
        reactor: Any,  # IReactorTime; zope interfaces do not type-check under plain mypy
        *,
        clients: list[Network] | None = None,
        time_scale: float = 1.0,
        wall_clock: Callable[[], float] = time.time,
        notices: Notices | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        super().__init__(self)
        self.engine = engine
        self.journal = journal
        self.reactor = reactor
        self.clients = clients or [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1")]
        self.time_scale = time_scale
        self.wall_clock = wall_clock
        self.notices = notices or Notices()
        self.errors = 0
        self.lost_replies = 0  # replies the socket refused (shown by /health)
        self._allowed_hosts: dict[str, bool] = {}
        self._secrets: dict[str, bytes] = {}
        self.accounting = AccountingProtocol(self)
        self.dedup.max_pending = self.accounting.dedup.max_pending = max_pending

    def allowed(self, host: str) -> bool:
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

    def secret_of(self, scenario: Scenario) -> bytes:
        secret = self._secrets.get(scenario.name)
        if secret is None:
            secret = self._secrets[scenario.name] = scenario.secret.encode("utf-8")
        return secret

    def reset(self) -> None:
        self.dedup.clear()
        self.accounting.dedup.clear()

    def pending(self) -> int:
        return self.dedup.pending + self.accounting.dedup.pending

    def serve(self, request: Packet, address: Address, key: Key, scenario: Scenario,
              now: float) -> Outcome:  # fmt: skip
        secret = self.secret_of(scenario)
        ma = message_authenticator_status(request, secret)
        if ma is _INVALID:
            # cannot be authenticated: the client has another secret, or it was tampered with
            return self._summary(request, address, Outcome.DROPPED_BAD_MESSAGE_AUTHENTICATOR,
                                 scenario=scenario.name, message_authenticator=ma)  # fmt: skip
        if ma is _ABSENT and scenario.require_message_authenticator:
            # dropped in silence, as FreeRADIUS does (require_message_authenticator): an answer
            # would tell an attacker what the server insists on
            return self._summary(request, address, Outcome.DROPPED_NO_MESSAGE_AUTHENTICATOR,
                                 scenario=scenario.name, message_authenticator=ma)  # fmt: skip
        decision = self.engine.decide(scenario, view(request, secret, ma), now)
        outcome = Outcome.MATCHED if decision.step is not None else Outcome.MISMATCH
        return self.answer(request, address, key, secret, decision, outcome, ma, now)

    def build(self, request: Packet, secret: bytes, decision: Decision) -> list[bytes]:
        assert decision.template is not None
        return build_reply(request, secret, decision.template, state=decision.state,
                                extra=decision.extra, fault=decision.fault)  # fmt: skip


class AccountingProtocol(_Port):
    """The accounting port (Accounting-Request, Status-Server; RFC 2866, RFC 5997)."""

    request_code = Code.ACCOUNTING_REQUEST
    status_code = Code.ACCOUNTING_RESPONSE

    def serve(self, request: Packet, address: Address, key: Key, scenario: Scenario,
              now: float) -> Outcome:  # fmt: skip
        server = self.server
        secret = server.secret_of(scenario)
        if not accounting_request_ok(request, secret):
            return self._summary(request, address, Outcome.DROPPED_BAD_REQUEST_AUTHENTICATOR,
                                 scenario=scenario.name)  # fmt: skip
        ma = message_authenticator_status(request, secret)  # optional here, checked if present
        if ma is _INVALID:
            return self._summary(request, address, Outcome.DROPPED_BAD_MESSAGE_AUTHENTICATOR,
                                 scenario=scenario.name, message_authenticator=ma)  # fmt: skip
        decision = server.engine.decide_accounting(scenario, view(request, secret, ma), now)
        outcome = Outcome.MATCHED if decision.step is not None else Outcome.MISMATCH
        return self.answer(request, address, key, secret, decision, outcome, ma, now)

    def build(self, request: Packet, secret: bytes, decision: Decision) -> list[bytes]:
        assert decision.template is not None
        return [accounting_reply(request, secret, decision.template)]
