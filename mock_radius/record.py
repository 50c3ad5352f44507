# -*- test-case-name: tests.test_record_import -*-
"""A recording proxy: clients talk to it as to a RADIUS server (auth and accounting ports); it
forwards each request to the upstream (re-signed with the upstream secret), relays the answer
(re-signed with the client secret) and keeps every exchange for ``recording.write_scenario``.

- Access-Request: the Request Authenticator is kept, so CHAP-Password (computed over it) stays
  valid upstream; a PAP password is revealed with the client secret and hidden again with the
  upstream one.
- Whether the upstream requires a Message-Authenticator is learned, not assumed: the first
  Access-Request goes out without one (the probe). Answered: the upstream does not require one,
  and later requests go out as the clients sent them. No answer within ``probe_timeout``: the
  same request goes out again with one; answered then, the upstream requires one (FreeRADIUS
  with ``require_message_authenticator`` drops such requests in silence), and every later
  request carries one. Neither answered: not learned, the next request probes again. An
  upstream slower than ``probe_timeout`` on the first request sees it twice; ``upstream_ma``
  ("required" or "optional") skips the probe.
- Accounting-Request: its Request Authenticator verified with the client secret and computed
  anew with the upstream one (RFC 2866); forwarded to the upstream's accounting port.
- Status-Server (either port): relayed and counted; its reply is the upstream's (the mock
  answers every Status-Server itself, so a scenario has nothing to record of it).

Client retransmissions are forwarded as retransmissions (counted: a request that got no answer
replays as that many lost transmissions) and recorded once.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.protocol import DatagramProtocol

from mock_radius.recording import (
    ACCOUNTING,
    DEFAULT_PROBE_TIMEOUT,
    DEFAULT_UPSTREAM_TIMEOUT,
    OPTIONAL,
    PROBE,
    REQUIRED,
    Exchange,
    access_exchange,
)
from mock_radius.replies import proxy_states
from radius_codec.authenticators import (
    MaStatus,
    accounting_request_ok,
    message_authenticator_status,
    sign_accounting_request,
    sign_reply,
    sign_request,
    verify_reply,
)
from radius_codec.codes import HEADER_LENGTH, Attr, Code, code_label
from radius_codec.dictionary import decode_attributes, decode_value
from radius_codec.packet import BadPacket, Packet, encode_pairs, parse
from radius_codec.passwords import pap_hide, pap_reveal

Address = tuple[str, int]
MAX_REMEMBERED = 4096  # client requests kept for retransmissions


@dataclass
class _Pending:
    side: _ClientSide
    client: Address
    request: Packet
    upstream_raw: bytes
    target: Address
    exchange: Exchange | None  # None: a Status-Server
    started: float
    upstream_id: int
    timer: Any = None
    reply: list[bytes] | None = None
    probe: str | None = None  # "bare": sent without MA to learn; "signed": sent again with one
    transmissions: int = 1
    sent: dict[int, bytes] = field(default_factory=dict)  # upstream id -> what went out


def _say(message: str) -> None:
    print(f"mock-radius record: {message}", file=sys.stderr, flush=True)


class _UpstreamSide(DatagramProtocol):
    def __init__(self, on_reply: Callable[[bytes], None]) -> None:
        self.on_reply = on_reply

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.on_reply(datagram)


class _ClientSide(DatagramProtocol):
    """A port clients send to: the auth one (Access-Request, Status-Server) or the accounting
    one (Accounting-Request, Status-Server)."""

    def __init__(self, proxy: RecordingProxy, codes: set[int]) -> None:
        self.proxy = proxy
        self.codes = codes

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        client: Address = (str(addr[0]), int(addr[1]))
        try:
            self.proxy.from_client(self, datagram, client)
        except Exception as exc:  # one bad packet must not end a recording session
            _say(f"dropped a request from {client[0]}:{client[1]}: {type(exc).__name__}")

    def send(self, datagram: bytes, address: Address) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.write(datagram, address)


class RecordingProxy:
    def __init__(
        self,
        reactor: Any,
        upstream: Address,
        secret: bytes,
        upstream_secret: bytes,
        *,
        upstream_acct: Address | None = None,
        upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT,
        probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
        upstream_ma: str = PROBE,
        max_exchanges: int | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        self.reactor = reactor
        self.upstream = upstream
        self.upstream_acct = upstream_acct or (upstream[0], upstream[1] + 1)
        self.secret = secret
        self.upstream_secret = upstream_secret
        self.upstream_timeout = upstream_timeout
        self.probe_timeout = probe_timeout
        self.max_exchanges = max_exchanges
        self.on_done = on_done
        self.exchanges: list[Exchange] = []
        self.auth_side = _ClientSide(self, {Code.ACCESS_REQUEST, Code.STATUS_SERVER})
        self.accounting_side = _ClientSide(self, {Code.ACCOUNTING_REQUEST, Code.STATUS_SERVER})
        self.upstream_side = _UpstreamSide(self._from_upstream)
        self._by_client: OrderedDict[bytes, _Pending] = OrderedDict()
        self._by_upstream_id: dict[int, _Pending] = {}
        self._next_id = 0
        self.unanswered = 0
        self.rejected_replies = 0
        self.status_server = {"relayed": 0, "answered": 0}
        # does the upstream require a Message-Authenticator? None: not known yet
        self.requires_ma: bool | None = {REQUIRED: True, OPTIONAL: False}.get(upstream_ma)
        self.learned_by_probe = False
        self._probing = False

    # client side

    def from_client(self, side: _ClientSide, datagram: bytes, client: Address) -> None:
        try:
            request = parse(datagram)
        except BadPacket as exc:
            _say(f"dropped a malformed packet from {client[0]}:{client[1]}: {exc}")
            return
        if request.code not in side.codes:
            return
        key = bytes((request.code, request.id, client[1] >> 8, client[1] & 255))
        key += request.authenticator + client[0].encode()
        known = self._by_client.get(key)
        if known is not None:  # a retransmission: forward it as one, or answer from the cache
            if known.reply is not None:
                for reply in known.reply:
                    side.send(reply, client)
            else:
                known.transmissions += 1
                self._upstream_send(known)
            return
        ma = self._authentic(request, client)
        if ma is None:
            return
        upstream_id = self._allocate_id()
        if upstream_id is None:
            _say("256 requests in flight upstream; dropped one")
            return
        pending = self._pending(side, request, client, upstream_id, ma)
        self._by_client[key] = pending
        while len(self._by_client) > MAX_REMEMBERED:
            self._by_client.popitem(last=False)
        self._start(pending)

    def _authentic(self, request: Packet, client: Address) -> MaStatus | None:
        """The request's Message-Authenticator status; None (and said why) when it does not
        verify with the client's secret."""
        where = f"{client[0]}:{client[1]}"
        ma = message_authenticator_status(request, self.secret)
        if request.code == Code.ACCOUNTING_REQUEST:
            if accounting_request_ok(request, self.secret) and ma is not MaStatus.INVALID:
                return ma
            _say(f"Accounting-Request from {where} does not verify: is --secret the "
                 "client's shared secret?")  # fmt: skip
            return None
        status_unsigned = request.code == Code.STATUS_SERVER and ma is not MaStatus.VALID
        if ma is MaStatus.INVALID or status_unsigned:
            _say(f"request from {where} fails its Message-Authenticator check: is --secret "
                 "the client's shared secret?")  # fmt: skip
            return None
        return ma

    def _pending(
        self, side: _ClientSide, request: Packet, client: Address, upstream_id: int, ma: MaStatus
    ) -> _Pending:
        accounting = side is self.accounting_side
        target = self.upstream_acct if accounting else self.upstream
        exchange = None
        if request.code == Code.ACCESS_REQUEST:
            exchange = access_exchange(request, self.secret, ma, time.time())
        elif request.code == Code.ACCOUNTING_REQUEST:
            raw_status = request.first(Attr.ACCT_STATUS_TYPE)
            status = None if raw_status is None else decode_value(Attr.ACCT_STATUS_TYPE, raw_status)
            exchange = Exchange(
                user=request.user_name, auth_type=None, clear_password=None, state=None,
                at=time.time(), kind=ACCOUNTING,
                status_type=status if isinstance(status, str | int) else None,
                message_authenticator=request.ma_offset >= 0,
            )  # fmt: skip
        else:
            self.status_server["relayed"] += 1
        return _Pending(side, client, request, b"", target, exchange, self.reactor.seconds(),
                        upstream_id)  # fmt: skip

    def _start(self, pending: _Pending) -> None:
        """Forward a new request: as the probe while the upstream's rule is not known."""
        request = pending.request
        with_ma = True
        if request.code == Code.ACCESS_REQUEST:
            if self.requires_ma is None and not self._probing:
                self._probing, pending.probe, with_ma = True, "bare", False
            elif self.requires_ma is False:
                with_ma = request.ma_offset >= 0  # as the client sent it
        elif request.code == Code.ACCOUNTING_REQUEST:
            with_ma = request.ma_offset >= 0
        self._send_new(pending, with_ma)

    def _send_new(self, pending: _Pending, with_ma: bool) -> None:
        pending.upstream_raw = self._forward(pending.request, pending.upstream_id, with_ma)
        pending.sent[pending.upstream_id] = pending.upstream_raw
        self._by_upstream_id[pending.upstream_id] = pending
        wait = self.probe_timeout if pending.probe == "bare" else self.upstream_timeout
        pending.timer = self.reactor.callLater(wait, self._timed_out, pending)
        self._upstream_send(pending)

    def _allocate_id(self) -> int | None:
        for _ in range(256):
            candidate = self._next_id
            self._next_id = (self._next_id + 1) % 256
            if candidate not in self._by_upstream_id:
                return candidate
        return None

    def _forward(self, request: Packet, upstream_id: int, with_ma: bool) -> bytes:
        pairs: list[tuple[int, bytes]] = []
        for kind, value in request.attrs:
            if kind == Attr.MESSAGE_AUTHENTICATOR:
                continue
            if kind == Attr.USER_PASSWORD:  # reveal with the client's secret, hide again
                clear = pap_reveal(value, self.secret, request.authenticator) or b""
                value = pap_hide(clear, self.upstream_secret, request.authenticator)
            pairs.append((kind, value))
        attributes = encode_pairs(pairs)
        if request.code == Code.ACCOUNTING_REQUEST:
            return sign_accounting_request(upstream_id, attributes, self.upstream_secret,
                                           message_authenticator=with_ma)  # fmt: skip
        return sign_request(upstream_id, request.authenticator, attributes, self.upstream_secret,
                            code=request.code, message_authenticator=with_ma)  # fmt: skip

    def _upstream_send(self, pending: _Pending) -> None:
        transport: Any = self.upstream_side.transport
        if transport is not None:
            transport.write(pending.upstream_raw, pending.target)

    # upstream side

    def _from_upstream(self, datagram: bytes) -> None:
        if len(datagram) < HEADER_LENGTH:
            return
        pending = self._by_upstream_id.get(datagram[1])
        if pending is None or pending.reply is not None:
            return
        sent = pending.sent[datagram[1]]  # the bare probe's reply may come after the signed
        try:
            reply = parse(datagram)
            valid = verify_reply(reply, sent[4:20], self.upstream_secret)
        except BadPacket:
            valid = False
        if not valid:
            self.rejected_replies += 1
            _say("a reply from the upstream does not verify: is --upstream-secret right?")
            return
        bare = len(sent) == HEADER_LENGTH or sent[HEADER_LENGTH] != Attr.MESSAGE_AUTHENTICATOR
        self._learn(pending, answered_bare=bare)
        pending.timer.cancel()
        self._forget(pending)
        kept = [
            (kind, value)
            for kind, value in reply.attrs
            if kind not in (Attr.MESSAGE_AUTHENTICATOR, Attr.PROXY_STATE)
        ]
        request = pending.request
        relayed = sign_reply(
            reply.code, request.id, request.authenticator,
            encode_pairs(kept) + proxy_states(request), self.secret,
            message_authenticator=request.code != Code.ACCOUNTING_REQUEST,
        )  # fmt: skip
        pending.reply = [relayed]
        pending.side.send(relayed, pending.client)
        if pending.exchange is None:
            self.status_server["answered"] += 1
            return
        pending.exchange.reply_code = code_label(reply.code)
        pending.exchange.reply_attributes = decode_attributes(kept)
        pending.exchange.delay = self.reactor.seconds() - pending.started
        self._recorded(pending)

    def _learn(self, pending: _Pending, answered_bare: bool) -> None:
        if pending.probe is None or self.requires_ma is not None:
            return
        self.requires_ma = not answered_bare
        self.learned_by_probe = True
        self._probing = False
        _say("the upstream " + ("requires a Message-Authenticator (a request without one got "
             "no answer, the same with one did)" if self.requires_ma else "does not require a "
             "Message-Authenticator (it answered a request without one)"))  # fmt: skip

    def _timed_out(self, pending: _Pending) -> None:
        if pending.probe == "bare":  # no answer without MA: the same request, signed
            pending.probe = "signed"
            upstream_id = self._allocate_id()
            if upstream_id is not None:
                pending.upstream_id = upstream_id
                self._send_new(pending, with_ma=True)
                return
        self._forget(pending)
        if pending.probe is not None:
            self._probing = False  # inconclusive: the next request probes again
        if pending.exchange is None:
            return  # a Status-Server nobody answered: counted as relayed only
        self.unanswered += 1
        _say(
            f"the upstream {pending.target[0]}:{pending.target[1]} did not answer a request of "
            f"{pending.exchange.user!r} within {self.upstream_timeout:g} s; recorded as a drop"
        )
        pending.reply = []
        self._recorded(pending)

    def finish(self) -> None:
        """The recording stops: requests still waiting for the upstream are drops."""
        for pending in list({id(p): p for p in self._by_upstream_id.values()}.values()):
            pending.timer.cancel()
            self._forget(pending)
            if pending.exchange is not None and pending.reply is None:
                self.unanswered += 1
                pending.reply = []
                pending.exchange.transmissions = pending.transmissions
                self.exchanges.append(pending.exchange)

    def _forget(self, pending: _Pending) -> None:
        for upstream_id in pending.sent:
            if self._by_upstream_id.get(upstream_id) is pending:
                del self._by_upstream_id[upstream_id]

    def _recorded(self, pending: _Pending) -> None:
        assert pending.exchange is not None
        pending.exchange.transmissions = pending.transmissions
        self.exchanges.append(pending.exchange)
        full = self.max_exchanges is not None and len(self.exchanges) >= self.max_exchanges
        if full and self.on_done is not None:
            self.on_done()
