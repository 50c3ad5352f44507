"""The protocol (mock_radius/protocol.py) and its strictness, without a network: Twisted's
task.Clock as reactor and a list as transport. Requests come from pyrad; replies are checked
with pyrad and with the RFC check of tests/radius_client.py. The codec itself is tested in
tests/radius_codec/."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

from pyrad import packet as rp
from twisted.internet.task import Clock

from mock_radius.dedup import DuplicateCache, Seen
from mock_radius.engine import Engine
from mock_radius.journal import Journal
from mock_radius.outcome import Outcome
from mock_radius.protocol import MockRadiusProtocol, Notices
from mock_radius.scenario import parse_scenario
from radius_codec.codes import MAX_PACKET_LENGTH, Code
from radius_codec.dictionary import dictionary
from tests.radius_client import build_request, pyrad_verifies, rfc_reply_problems

SECRET = b"s"
SCENARIO = parse_scenario(
    """
name: wire
secret: s
steps:
  - name: slow
    match: {userName: slow}
    delay: 2
    times: always
    reply: {code: Access-Accept}
  - name: big
    match: {userName: big}
    times: always
    reply:
      code: Access-Accept
      attributes: {Reply-Message: [LONG_X, LONG_Y]}
  - name: silence
    match: {userName: silent}
    drop: true
    times: always
  - name: lose-two
    match: {userName: flaky}
    drop: true
    times: 2
  - name: then-answer
    match: {userName: flaky}
    times: always
    reply: {code: Access-Accept, attributes: {Reply-Message: third time}}
  - name: ignoring
    match: {userName: ignoring}
    onRetransmit: ignore
    times: always
    reply: {code: Access-Reject}
  - name: anyone
    times: always
    reply: {code: Access-Accept, attributes: {Reply-Message: hello}}
accounting:
  - {name: stop, match: {attributes: {Acct-Status-Type: Stop}}, drop: true}
  - {name: start, match: {attributes: {Acct-Status-Type: Start}},
     reply: {attributes: {Reply-Message: noted}}}
""".replace("LONG_X", "x" * 250).replace("LONG_Y", "y" * 250),
    "wire.yaml",
)
CLIENT = ("127.0.0.1", 5000)


class _Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def write(self, data: bytes, address: Any) -> None:
        self.sent.append((data, address))


def _protocol(**engine_options: Any) -> tuple[MockRadiusProtocol, Clock, _Transport, _Transport]:
    clock = Clock()
    protocol = MockRadiusProtocol(
        Engine([SCENARIO], **engine_options), Journal(), clock, notices=Notices(io.StringIO())
    )
    transport, accounting = _Transport(), _Transport()
    protocol.transport = transport  # type: ignore[assignment]
    protocol.accounting.transport = accounting  # type: ignore[assignment]
    return protocol, clock, transport, accounting


def _outcomes(protocol: MockRadiusProtocol) -> list[str]:
    return [e["outcome"] for e in protocol.journal.entries()]


# what the protocol refuses


def test_two_message_authenticators_are_malformed() -> None:
    request = build_request("s", "anyone", "x")
    raw = bytearray(request.RequestPacket())
    raw += raw[20:38]  # the Message-Authenticator once more
    raw[2:4] = len(raw).to_bytes(2, "big")
    protocol, _clock, transport, _ = _protocol()
    assert protocol.handle(bytes(raw), CLIENT) is Outcome.DROPPED_MALFORMED
    assert transport.sent == []


def test_packets_over_4096_octets_are_malformed_and_padding_is_not() -> None:
    protocol, _clock, transport, _ = _protocol()
    raw = build_request("s", "anyone", "x").RequestPacket()
    assert protocol.handle(raw + bytes(MAX_PACKET_LENGTH), CLIENT) is Outcome.MATCHED
    huge = bytearray(raw)
    while len(huge) <= MAX_PACKET_LENGTH:
        huge += bytes([18, 200]) + bytes(198)
    huge[2:4] = len(huge).to_bytes(2, "big")
    assert protocol.handle(bytes(huge), CLIENT) is Outcome.DROPPED_MALFORMED
    assert len(transport.sent) == 1
    assert protocol.journal.entries()[-1]["error"] == (
        f"the Length field says {len(huge)}, more than {MAX_PACKET_LENGTH}"
    )


# replies


def _verify(reply: bytes, request: rp.AuthPacket, raw_request: bytes) -> rp.AuthPacket:
    assert rfc_reply_problems(reply, raw_request, request.secret) == []
    assert pyrad_verifies(request, reply, enforce_ma=True)
    return rp.AuthPacket(packet=reply, secret=request.secret, dict=dictionary())


def test_a_reply_is_signed_and_carries_proxy_states_in_order() -> None:
    protocol, _clock, transport, _ = _protocol()
    request = build_request("s", "anyone", "x", proxy_states=[b"one", b"two"])
    raw = request.RequestPacket()
    assert protocol.handle(raw, CLIENT) is Outcome.MATCHED
    reply = _verify(transport.sent[0][0], request, raw)
    assert reply["Reply-Message"] == ["hello"] and reply["Proxy-State"] == [b"one", b"two"]
    assert transport.sent[0][0][20:22] == bytes((80, 18))  # Message-Authenticator first


def test_a_reply_over_4096_octets_is_not_sent() -> None:
    protocol, _clock, transport, _ = _protocol()
    request = build_request("s", "big", "x", proxy_states=[bytes(250)] * 15)
    raw = request.RequestPacket()
    assert len(raw) <= MAX_PACKET_LENGTH
    assert protocol.handle(raw, CLIENT) is Outcome.REPLY_TOO_LONG
    assert transport.sent == []
    entry = protocol.journal.entries()[-1]
    assert entry["error"].startswith("the reply has ") and entry["step"] == "big"
    assert protocol.handle(raw, CLIENT) is Outcome.RETRANSMISSION_DROPPED
    assert transport.sent == []


def test_retransmissions_during_a_delay_get_one_reply() -> None:
    protocol, clock, transport, _ = _protocol()
    request = build_request("s", "slow", "x")
    raw = request.RequestPacket()
    assert protocol.handle(raw, CLIENT) is Outcome.MATCHED
    for _ in range(3):
        clock.advance(0.5)
        assert protocol.handle(raw, CLIENT) is Outcome.RETRANSMISSION_PENDING
    assert transport.sent == []
    clock.advance(0.5)
    assert len(transport.sent) == 1
    _verify(transport.sent[0][0], request, raw)
    assert protocol.handle(raw, CLIENT) is Outcome.RETRANSMISSION_FROM_CACHE
    assert [d for d, _ in transport.sent] == [transport.sent[0][0]] * 2
    first = protocol.journal.entries()[0]
    assert first["sent"] is not None and first["delay"] == 2


def test_a_drop_loses_one_transmission_and_the_retransmission_goes_to_the_script() -> None:
    """ "Lose the first two transmissions, then answer": the same datagram three times."""
    protocol, _clock, transport, _ = _protocol()
    request = build_request("s", "flaky", "x")
    raw = request.RequestPacket()
    outcomes = [protocol.handle(raw, CLIENT) for _ in range(4)]
    assert outcomes == [Outcome.DROPPED_BY_SCRIPT, Outcome.DROPPED_BY_SCRIPT, Outcome.MATCHED,
                        Outcome.RETRANSMISSION_FROM_CACHE]  # fmt: skip
    assert len(transport.sent) == 2 and transport.sent[0][0] == transport.sent[1][0]
    _verify(transport.sent[0][0], request, raw)  # answered as the request it is
    entries = protocol.journal.entries()
    assert [(e.get("step"), e.get("transmission")) for e in entries] == [
        ("lose-two", 1), ("lose-two", 2), ("then-answer", 3), (None, None)
    ]  # fmt: skip


def test_a_request_without_message_authenticator_is_dropped_in_silence() -> None:
    """As FreeRADIUS with require_message_authenticator: no Access-Reject saying why."""
    protocol, _clock, transport, _ = _protocol()
    raw = build_request("s", "anyone", "x", message_authenticator=False).RequestPacket()
    assert protocol.handle(raw, CLIENT) is Outcome.DROPPED_NO_MESSAGE_AUTHENTICATOR
    assert transport.sent == []
    (entry,) = protocol.journal.entries()
    assert (entry["scenario"], entry["messageAuthenticator"], entry["user"]) == (
        "wire", "absent", "anyone"
    )  # fmt: skip
    lenient = SCENARIO.model_copy(update={"require_message_authenticator": False})
    protocol.engine = Engine([lenient])
    assert protocol.handle(raw, CLIENT) is Outcome.MATCHED and len(transport.sent) == 1


def test_on_retransmit_ignore() -> None:
    protocol, _clock, transport, _ = _protocol()
    raw = build_request("s", "ignoring", "x").RequestPacket()
    protocol.handle(raw, CLIENT)
    assert protocol.handle(raw, CLIENT) is Outcome.RETRANSMISSION_IGNORED
    assert len(transport.sent) == 1


def test_a_dropped_request_does_not_hold_up_the_duplicate_cache() -> None:
    protocol, clock, _transport, _ = _protocol()
    protocol.handle(build_request("s", "silent", "x").RequestPacket(), CLIENT)
    for n in range(50):
        protocol.handle(build_request("s", f"user{n}", "x").RequestPacket(), CLIENT)
    assert len(protocol.dedup) == 51
    clock.advance(31)
    protocol.handle(build_request("s", "anyone", "x").RequestPacket(), CLIENT)
    assert len(protocol.dedup) == 1  # everything older than the window is gone


def test_the_duplicate_cache_is_bounded() -> None:
    cache = DuplicateCache(window=30, max_entries=100, max_pending=5)
    for n in range(1000):
        cache.answered(n.to_bytes(4, "big"), Seen.ANSWERED, b"reply", now=0)
    assert len(cache) == 100
    assert cache.get((999).to_bytes(4, "big"), 0) is not None  # the newest stay
    pending = [cache.start_pending(b"p%d" % n) for n in range(6)]
    assert pending[-1] is None and cache.pending == 5  # no room: dropped-overload
    cache.finish(pending[0], Seen.ANSWERED, b"r", now=1)  # type: ignore[arg-type]
    assert cache.pending == 4


def test_delayed_replies_are_bounded() -> None:
    protocol, clock, transport, _ = _protocol()
    protocol.dedup.max_pending = 3
    outcomes = [protocol.handle(build_request("s", "slow", "x").RequestPacket(), CLIENT)
                for _ in range(5)]  # fmt: skip
    assert outcomes == [Outcome.MATCHED] * 3 + [Outcome.DROPPED_OVERLOAD] * 2
    clock.advance(2)
    assert len(transport.sent) == 3 and protocol.pending() == 0


# Status-Server and accounting


def test_status_server_is_answered_with_a_signed_accept_on_the_auth_port() -> None:
    protocol, _clock, transport, accounting = _protocol()
    status = rp.AuthPacket(code=Code.STATUS_SERVER, secret=SECRET, dict=dictionary())
    status.authenticator = status.CreateAuthenticator()
    status.add_message_authenticator()
    raw = status.RequestPacket()
    assert protocol.handle(raw, CLIENT) is Outcome.STATUS_SERVER
    reply = transport.sent[0][0]
    assert reply[0] == Code.ACCESS_ACCEPT
    assert rfc_reply_problems(reply, raw, SECRET) == []
    assert protocol.accounting.handle(raw, CLIENT) is Outcome.STATUS_SERVER
    assert accounting.sent[0][0][0] == Code.ACCOUNTING_RESPONSE
    assert rfc_reply_problems(accounting.sent[0][0], raw, SECRET) == []
    unsigned = rp.AuthPacket(code=Code.STATUS_SERVER, secret=SECRET, dict=dictionary())
    unsigned.authenticator = unsigned.CreateAuthenticator()
    assert protocol.handle(unsigned.RequestPacket(), CLIENT) is (
        Outcome.DROPPED_NO_MESSAGE_AUTHENTICATOR
    )
    stranger = rp.AuthPacket(code=Code.STATUS_SERVER, secret=b"other", dict=dictionary())
    stranger.add_message_authenticator()
    assert protocol.handle(stranger.RequestPacket(), CLIENT) is (
        Outcome.DROPPED_BAD_MESSAGE_AUTHENTICATOR
    )
    assert len(transport.sent) == 1


def _accounting(status: str, secret: bytes = SECRET) -> tuple[rp.AcctPacket, bytes]:
    packet = rp.AcctPacket(secret=secret, dict=dictionary())
    packet["User-Name"] = "anyone"
    packet["Acct-Status-Type"] = status
    packet["Acct-Session-Id"] = "s-1"
    return packet, packet.RequestPacket()


def test_accounting_requests_are_verified_answered_and_scripted() -> None:
    protocol, _clock, _transport, accounting = _protocol()
    start, raw = _accounting("Start")
    assert protocol.accounting.handle(raw, CLIENT) is Outcome.MATCHED
    reply = accounting.sent[0][0]
    expected = hashlib.md5(reply[:4] + raw[4:20] + reply[20:] + SECRET).digest()
    assert reply[4:20] == expected  # RFC 2866 Response Authenticator
    decoded = rp.AcctPacket(packet=reply, secret=SECRET, dict=dictionary())
    assert start.VerifyReply(decoded, reply) and decoded["Reply-Message"] == ["noted"]
    _, stop = _accounting("Stop")
    assert protocol.accounting.handle(stop, CLIENT) is Outcome.DROPPED_BY_SCRIPT
    interim, update = _accounting("Interim-Update")  # no step for it: answered all the same
    assert protocol.accounting.handle(update, CLIENT) is Outcome.MISMATCH
    decoded = rp.AcctPacket(packet=accounting.sent[1][0], secret=SECRET, dict=dictionary())
    assert interim.VerifyReply(decoded, accounting.sent[1][0]) and decoded.keys() == []
    assert protocol.journal.entries()[-1]["nearMiss"]["step"] == "stop"
    _, forged = _accounting("Start", secret=b"wrong")
    assert protocol.accounting.handle(forged, CLIENT) is Outcome.DROPPED_BAD_REQUEST_AUTHENTICATOR
    access = build_request("s", "anyone", "x").RequestPacket()
    assert protocol.accounting.handle(access, CLIENT) is Outcome.DROPPED_UNSUPPORTED_CODE
    assert protocol.handle(raw, CLIENT) is Outcome.DROPPED_UNSUPPORTED_CODE
    assert len(accounting.sent) == 2
    entry = protocol.journal.entries()[0]
    assert entry["attributes"]["Acct-Status-Type"] == ["Start"]


# the journal


def test_junk_keeps_a_summary_only_and_the_journal_stays_within_its_bytes() -> None:
    protocol, _clock, _transport, _ = _protocol()
    protocol.journal.max_bytes = 200_000
    junk = bytes([1, 7, 0x20, 0]) + bytes(8188)  # claims 8192 octets: more than RADIUS allows
    for _ in range(2000):
        assert protocol.handle(junk, CLIENT) is Outcome.DROPPED_MALFORMED
    stats = protocol.journal.stats()
    assert stats["bytes"] <= 200_000 and stats["evicted"] > 0
    entry = protocol.journal.entries(limit=1)[0]
    assert entry["length"] == 8192 and "attributes" not in entry
    assert set(entry) == {"seq", "time", "source", "outcome", "timeScale", "user", "length",
                          "error"}  # fmt: skip


def test_journal_entries_keep_secrets_masked_and_page() -> None:
    protocol, _clock, _transport, _ = _protocol()
    for n in range(30):
        protocol.handle(build_request("s", f"user{n}", "secret-pass").RequestPacket(), CLIENT)
    entries = protocol.journal.entries()
    assert len(entries) == 30
    assert entries[0]["attributes"]["User-Password"] == ["***"]
    assert "secret-pass" not in json.dumps(entries)
    page = protocol.journal.entries(since=entries[9]["seq"], limit=5)
    assert [e["user"] for e in page] == [f"user{n}" for n in range(10, 15)]
    assert [e["user"] for e in protocol.journal.entries(user="user29")] == ["user29"]


def test_an_unknown_user_is_reported_once() -> None:
    stream = io.StringIO()
    protocol = MockRadiusProtocol(
        Engine([SCENARIO.model_copy(update={"users": ["only-me"]})], active=None),
        Journal(),
        Clock(),
        notices=Notices(stream),
    )
    protocol.engine.active = None  # nobody else is covered
    for _ in range(3):
        raw = build_request("s", "stranger", "x").RequestPacket()
        assert protocol.handle(raw, CLIENT) is Outcome.DROPPED_NO_SCENARIO
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines == [{"event": "unknown-user", "user": "stranger", "message": lines[0]["message"]}]


def test_unknown_users_are_told_once_each_and_at_most_a_hundred_times() -> None:
    stream = io.StringIO()
    notices = Notices(stream)
    for n in range(150):
        notices.unknown_user(f"user{n}")
        notices.unknown_user(f"user{n}")  # once per user
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["unknown-user"] * 100 + ["unknown-users"]
    assert [line["user"] for line in lines[:100]] == [f"user{n}" for n in range(100)]
