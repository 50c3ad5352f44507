"""A recording proxy: clients talk to it as to a RADIUS server; it forwards each request to the
upstream (re-signed with the upstream secret), relays the answer (re-signed with the client
secret) and keeps every exchange for ``recording.write_scenario``.

The request authenticator is kept when forwarding, so CHAP-Password (computed over it) stays
valid upstream; PAP passwords are decrypted with the client secret and encrypted again with the
upstream one. Client retransmissions are forwarded as retransmissions and recorded once.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyrad import packet as rp
from twisted.internet.protocol import DatagramProtocol

from mock_radius import packets
from mock_radius.recording import Exchange
from mock_radius.scenario import dictionary

Address = tuple[str, int]


@dataclass
class _Pending:
    client: Address
    request: rp.AuthPacket
    upstream_raw: bytes
    upstream_request: rp.AuthPacket
    exchange: Exchange
    started: float
    timer: Any
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
        self._by_client: OrderedDict[tuple[str, int, int, bytes], _Pending] = OrderedDict()
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
            request = packets.decode(datagram)
        except packets.BadPacket as exc:
            _say(f"dropped a malformed packet from {client[0]}:{client[1]}: {exc}")
            return
        if request.code != rp.AccessRequest:
            return
        key = (client[0], client[1], request.id, request.authenticator)
        known = self._by_client.get(key)
        if known is not None:  # a retransmission: forward it as one, or answer from the cache
            if known.reply is not None:
                for reply in known.reply:
                    self._send(reply, client)
            else:
                self._upstream_send(known.upstream_raw)
            return
        if packets.message_authenticator_status(request, self.secret) == "invalid":
            _say(f"request from {client[0]}:{client[1]} fails its Message-Authenticator check:"
                 " is --secret the client's shared secret?")  # fmt: skip
            return
        upstream_id = self._allocate_id()
        if upstream_id is None:
            _say("256 requests in flight upstream; dropped one")
            return
        forward = self._forward(request, upstream_id)
        values = packets.attribute_values(request)
        view = packets.request_view(request, self.secret, "valid", values)
        state = values.get("State", [None])[0]
        exchange = Exchange(
            user=view.user_name,
            auth_type=view.auth_type,
            clear_password=view.clear_password,
            state=state if isinstance(state, bytes) else None,
            at=time.time(),
        )
        raw = forward.RequestPacket()
        pending = _Pending(client, request, raw, forward, exchange, self.reactor.seconds(), None)
        pending.timer = self.reactor.callLater(self.upstream_timeout, self._timed_out, pending)
        self._by_client[key] = pending
        self._by_upstream_id[upstream_id] = pending
        self._upstream_send(raw)

    def _allocate_id(self) -> int | None:
        for _ in range(256):
            candidate = self._next_id
            self._next_id = (self._next_id + 1) % 256
            if candidate not in self._by_upstream_id:
                return candidate
        return None

    def _forward(self, request: rp.AuthPacket, upstream_id: int) -> rp.AuthPacket:
        forward = rp.AuthPacket(
            code=rp.AccessRequest, id=upstream_id, secret=self.upstream_secret,
            authenticator=request.authenticator, dict=dictionary(),
        )  # fmt: skip
        for code in OrderedDict.keys(request):
            if code == packets.MESSAGE_AUTHENTICATOR:
                continue
            values = list(OrderedDict.__getitem__(request, code))
            if code == 2:  # User-Password: decrypt with the client's secret, encrypt again
                request.secret = self.secret
                values = [forward.PwCrypt(request.PwDecrypt(v)) for v in values]
            OrderedDict.__setitem__(forward, code, values)
        forward.add_message_authenticator()
        return forward

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
        if len(datagram) < 20:
            return
        pending = self._by_upstream_id.get(datagram[1])
        if pending is None or pending.reply is not None:
            return
        try:
            reply = rp.AuthPacket(packet=datagram, secret=self.upstream_secret, dict=dictionary())
            valid = pending.upstream_request.VerifyReply(reply, datagram)
        except Exception:
            valid = False
        if not valid:
            self.rejected_replies += 1
            _say("a reply from the upstream does not verify: is --upstream-secret right?")
            return
        pending.timer.cancel()
        del self._by_upstream_id[datagram[1]]
        relay = pending.request.CreateReply()
        relay.secret = self.secret
        relay.code = reply.code
        for code in OrderedDict.keys(reply):
            if code not in (packets.MESSAGE_AUTHENTICATOR, 33):
                OrderedDict.__setitem__(relay, code, list(OrderedDict.__getitem__(reply, code)))
        raw = relay.ReplyPacket()
        pending.reply = [raw]
        self._send(raw, pending.client)
        pending.exchange.reply_code = packets.CODE_NAMES.get(reply.code, str(reply.code))
        pending.exchange.reply_attributes = packets.attribute_values(reply)
        pending.exchange.delay = self.reactor.seconds() - pending.started
        self._recorded(pending.exchange)

    def _timed_out(self, pending: _Pending) -> None:
        self._by_upstream_id.pop(pending.upstream_request.id, None)
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
