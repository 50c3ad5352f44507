"""mock_radius/faults.py: each fault breaks exactly the one thing it names, as the RFC check
of tests/radius_client.py (written without the codec) sees it; unknown names are refused when
a scenario loads."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from mock_radius.faults import Fault, apply_fault, resign
from mock_radius.replies import build_reply, compile_reply
from mock_radius.scenario import ScenarioError, parse_scenario
from radius_codec.authenticators import sign_request
from radius_codec.codes import Code
from radius_codec.packet import parse
from tests.radius_client import build_request, pyrad_verifies, rfc_reply_problems

SECRET = "s"
TEMPLATE = compile_reply(Code.ACCESS_ACCEPT, {"Reply-Message": "hello"})


def _replies(fault: Fault | None) -> tuple[bytes, list[bytes]]:
    request = build_request(SECRET, "u", "p").RequestPacket()
    return request, build_reply(parse(request), SECRET.encode(), TEMPLATE, fault=fault)


def test_without_a_fault_the_reply_is_valid() -> None:
    request, (reply,) = _replies(None)
    assert rfc_reply_problems(reply, request, SECRET.encode()) == []
    assert reply[20] == 80  # with a Message-Authenticator, first


# what the RFC check finds in a reply with each fault that makes it invalid
BROKEN = {
    Fault.BAD_RESPONSE_AUTHENTICATOR: "Response Authenticator does not verify",
    Fault.BAD_MESSAGE_AUTHENTICATOR: "Message-Authenticator does not verify",
    Fault.WRONG_IDENTIFIER: "identifier {wrong}, request {right}",
    Fault.TRUNCATED: "Length field {length}, datagram {cut} octets",
    Fault.MALFORMED: "attribute framing broken at octet {end}",
}


def test_every_fault_is_tested_here() -> None:
    assert set(BROKEN) | {Fault.NO_MESSAGE_AUTHENTICATOR, Fault.DUPLICATE} == set(Fault)


@pytest.mark.parametrize("fault", list(BROKEN))
def test_each_fault_breaks_exactly_one_thing(fault: Fault) -> None:
    request, (reply,) = _replies(fault)
    _, (valid,) = _replies(None)
    expected = BROKEN[fault].format(
        wrong=(request[1] + 1) % 256, right=request[1], length=len(valid), cut=len(valid) - 7,
        end=len(valid),
    )  # fmt: skip
    assert rfc_reply_problems(reply, request, SECRET.encode()) == [expected]


def test_a_malformed_reply_keeps_a_valid_message_authenticator() -> None:
    """The RFC check stops at the broken framing; the Message-Authenticator (first) is checked
    here by RFC 3579's formula, so only the framing is wrong."""
    request, (reply,) = _replies(Fault.MALFORMED)
    zeroed = reply[:4] + request[4:20] + reply[20:22] + bytes(16) + reply[38:]
    assert reply[22:38] == hmac.new(SECRET.encode(), zeroed, hashlib.md5).digest()


def test_the_wrong_identifier_of_identifier_255_is_0() -> None:
    request = sign_request(255, bytes(range(16)), b"\x01\x03u", SECRET.encode())
    (reply,) = build_reply(parse(request), SECRET.encode(), TEMPLATE,
                           fault=Fault.WRONG_IDENTIFIER)  # fmt: skip
    assert reply[1] == 0
    assert rfc_reply_problems(reply, request, SECRET.encode()) == ["identifier 0, request 255"]


def test_no_message_authenticator_is_valid_but_for_a_strict_client() -> None:
    request, (reply,) = _replies(Fault.NO_MESSAGE_AUTHENTICATOR)
    assert rfc_reply_problems(reply, request, SECRET.encode()) == []
    assert 80 not in [kind for kind, _ in parse(reply).attrs]
    packet = build_request(SECRET, "u", "p")
    raw = packet.RequestPacket()
    (reply,) = build_reply(parse(raw), SECRET.encode(), TEMPLATE,
                           fault=Fault.NO_MESSAGE_AUTHENTICATOR)  # fmt: skip
    assert pyrad_verifies(packet, reply, enforce_ma=False)
    assert not pyrad_verifies(packet, reply, enforce_ma=True)


def test_duplicate_sends_the_valid_reply_twice() -> None:
    request, replies = _replies(Fault.DUPLICATE)
    assert len(replies) == 2 and replies[0] == replies[1]
    assert rfc_reply_problems(replies[0], request, SECRET.encode()) == []


def test_truncating_a_bare_reply_leaves_less_than_a_header() -> None:
    bare = bytes((2, 1, 0, 20)) + bytes(16)
    (cut,) = apply_fault(bare, bytes(16), b"s", Fault.TRUNCATED)
    assert len(cut) == 12 and rfc_reply_problems(cut, bytes(20), b"s") == [
        "12 octets: shorter than a header"
    ]


def test_resign_finds_the_message_authenticator_wherever_it_is() -> None:
    """After an attribute of 18 octets that is not one, and an empty one (2 octets)."""
    request = build_request(SECRET, "u", "p").RequestPacket()
    attributes = b"\x12\x12" + b"x" * 16 + b"\x19\x02" + b"\x50\x12" + bytes(16)
    broken = bytes((2, request[1], 0, 0)) + bytes(16) + attributes
    fixed = resign(broken, request[4:20], SECRET.encode(), fix_ma=True)
    assert rfc_reply_problems(fixed, request, SECRET.encode()) == []
    assert fixed[20:40] == attributes[:20]  # the first attribute untouched
    bare = resign(broken[:40], request[4:20], SECRET.encode(), fix_ma=True)  # none to fix
    assert rfc_reply_problems(bare, request, SECRET.encode()) == []


def test_resign_makes_a_changed_reply_valid_again() -> None:
    request, (reply,) = _replies(None)
    changed = bytearray(reply + bytes((18, 4)) + b"ok")  # one more Reply-Message
    fixed = resign(bytes(changed), request[4:20], SECRET.encode(), fix_ma=True)
    assert fixed[2:4] == len(changed).to_bytes(2, "big")
    assert rfc_reply_problems(fixed, request, SECRET.encode()) == []
    unfixed = resign(bytes(changed), request[4:20], SECRET.encode(), fix_ma=False)
    assert rfc_reply_problems(unfixed, request, SECRET.encode()) == [
        "Message-Authenticator does not verify"
    ]


def test_an_unknown_fault_is_refused_with_file_and_line() -> None:
    text = "name: x\nsecret: s\nsteps:\n  - reply: {code: Access-Accept}\n    fault: slow\n"
    with pytest.raises(ScenarioError) as refused:
        parse_scenario(text, "t.yaml")
    assert str(refused.value).startswith("t.yaml:5: steps[0].fault: Input should be ")
    assert "'bad-response-authenticator'" in str(refused.value)
    loaded = parse_scenario(text.replace("slow", "duplicate"), "t.yaml")
    assert loaded.steps[0].fault is Fault.DUPLICATE
