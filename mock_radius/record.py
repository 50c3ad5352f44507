"""A recording proxy: clients talk to it as to a RADIUS server; it forwards each request to the
upstream (re-signed with the upstream secret), relays the answer (re-signed with the client
secret) and keeps every exchange for ``recording.write_scenario``.

The request authenticator is kept when forwarding, so CHAP-Password (computed over it) stays
valid upstream; PAP passwords are revealed with the client secret and hidden again with the
upstream one. The forwarded request always carries a Message-Authenticator (upstreams such as
FreeRADIUS 3.2 may insist); whether the client sent one is recorded, so the scenario asks for
one only if every client did. Client retransmissions are forwarded as retransmissions and
recorded once.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.protocol import DatagramProtocol

from mock_radius import wire
from mock_radius.recording import Exchange

Address = tuple[str, int]
MAX_REMEMBERED = 4096  # client requests kept for retransmissions


@dataclass
class _Pending:
    client: Address
    request: wire.Request
    upstream_raw: bytes
    exchange: Exchange
    started: float
    timer: Any
    upstream_id: int
    reply: list[bytes] | None = None


def _say(message: str) -> None:
    print(f"mock-radius record: {message}", file=sys.stderr, flush=True)


class _UpstreamSide(DatagramProtocol):
    def __init__(self, on_reply: Callable[[bytes], None]) -> None:
        self.on_reply = on_reply

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.on_reply(datagram)


class RecordingProxy(DatagramProtocol):
    def __init__(
        self,
        reactor: Any,
        upstream: Address,
        secret: bytes,
        upstream_secret: bytes,
        *,
        upstream_timeout: float = 5.0,
        max_exchanges: int | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        self.reactor = reactor
        self.upstream = upstream
        self.secret = secret
        self.upstream_secret = upstream_secret
        self.upstream_timeout = upstream_timeout
        self.max_exchanges = max_exchanges
        self.on_done = on_done
        self.exchanges: list[Exchange] = []
        self.upstream_side = _UpstreamSide(self._from_upstream)
        self._by_client: OrderedDict[bytes, _Pending] = OrderedDict()
        self._by_upstream_id: dict[int, _Pending] = {}
        self._next_id = 0
        self.unanswered = 0
        self.rejected_replies = 0

    # client side

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        client: Address = (str(addr[0]), int(addr[1]))
        try:
            self._from_client(datagram, client)
        except Exception as exc:  # one bad packet must not end a recording session
            _say(f"dropped a request from {client[0]}:{client[1]}: {type(exc).__name__}")

    def _from_client(self, datagram: bytes, client: Address) -> None:
        try:
            request = wire.parse(datagram)
        except wire.BadPacket as exc:
            _say(f"dropped a malformed packet from {client[0]}:{client[1]}: {exc}")
            return
        if request.code != wire.ACCESS_REQUEST:
            return
        key = request.authenticator + bytes((request.id, client[1] >> 8, client[1] & 255))
        key += client[0].encode()
        known = self._by_client.get(key)
        if known is not None:  # a retransmission: forward it as one, or answer from the cache
            if known.reply is not None:
                for reply in known.reply:
                    self._send(reply, client)
            else:
                self._upstream_send(known.upstream_raw)
            return
        ma = wire.message_authenticator(request, self.secret)
        if ma == wire.INVALID:
            _say(f"request from {client[0]}:{client[1]} fails its Message-Authenticator check:"
                 " is --secret the client's shared secret?")  # fmt: skip
            return
        upstream_id = self._allocate_id()
        if upstream_id is None:
            _say("256 requests in flight upstream; dropped one")
            return
        raw = self._forward(request, upstream_id)
        view = wire.view(request, self.secret, ma)
        exchange = Exchange(
            user=view.user_name,
            auth_type=view.auth_type,
            clear_password=None if view.chap is not None else view.clear_password,
            state=view.state,
            at=time.time(),
            message_authenticator=ma == wire.VALID,
            chap=view.chap,
        )
        pending = _Pending(client, request, raw, exchange, self.reactor.seconds(), None,
                           upstream_id)  # fmt: skip
        pending.timer = self.reactor.callLater(self.upstream_timeout, self._timed_out, pending)
        self._by_client[key] = pending
        while len(self._by_client) > MAX_REMEMBERED:
            self._by_client.popitem(last=False)
        self._by_upstream_id[upstream_id] = pending
        self._upstream_send(raw)

    def _allocate_id(self) -> int | None:
        for _ in range(256):
            candidate = self._next_id
            self._next_id = (self._next_id + 1) % 256
            if candidate not in self._by_upstream_id:
                return candidate
        return None

    def _forward(self, request: wire.Request, upstream_id: int) -> bytes:
        pairs: list[tuple[int, bytes]] = []
        for kind, value in request.attrs:
            if kind == wire.MESSAGE_AUTHENTICATOR:
                continue
            if kind == wire.USER_PASSWORD:  # reveal with the client's secret, hide again
                clear = wire.pap_password(request, self.secret) or b""
                value = wire.pap_hide(clear, self.upstream_secret, request.authenticator)
            pairs.append((kind, value))
        return wire.sign_request(
            upstream_id, request.authenticator, wire.encode_pairs(pairs), self.upstream_secret
        )

    def _send(self, datagram: bytes, address: Address) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.write(datagram, address)

    def _upstream_send(self, datagram: bytes) -> None:
        transport: Any = self.upstream_side.transport
        if transport is not None:
            transport.write(datagram, self.upstream)

    # upstream side

    def _from_upstream(self, datagram: bytes) -> None:
        if len(datagram) < wire.HEADER:
            return
        pending = self._by_upstream_id.get(datagram[1])
        if pending is None or pending.reply is not None:
            return
        try:
            reply = wire.parse(datagram)
            valid = wire.verify_reply(reply, pending.request.authenticator, self.upstream_secret)
        except wire.BadPacket:
            valid = False
        if not valid:
            self.rejected_replies += 1
            _say("a reply from the upstream does not verify: is --upstream-secret right?")
            return
        pending.timer.cancel()
        del self._by_upstream_id[pending.upstream_id]
        kept = [
            (kind, value)
            for kind, value in reply.attrs
            if kind not in (wire.MESSAGE_AUTHENTICATOR, wire.PROXY_STATE)
        ]
        relayed = wire.sign(
            reply.code,
            pending.request.id,
            pending.request.authenticator,
            wire.encode_pairs(kept) + wire.proxy_states(pending.request),
            self.secret,
            message_authenticator=True,
        )
        pending.reply = [relayed]
        self._send(relayed, pending.client)
        pending.exchange.reply_code = wire.CODE_NAMES.get(reply.code, str(reply.code))
        pending.exchange.reply_attributes = wire.decoded_attributes(kept)
        pending.exchange.delay = self.reactor.seconds() - pending.started
        self._recorded(pending.exchange)

    def _timed_out(self, pending: _Pending) -> None:
        self._by_upstream_id.pop(pending.upstream_id, None)
        self.unanswered += 1
        _say(
            f"the upstream {self.upstream[0]}:{self.upstream[1]} did not answer a request of "
            f"{pending.exchange.user!r} within {self.upstream_timeout:g} s; recorded as a drop"
        )
        pending.reply = []
        self._recorded(pending.exchange)

    def _recorded(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        full = self.max_exchanges is not None and len(self.exchanges) >= self.max_exchanges
        if full and self.on_done is not None:
            self.on_done()
