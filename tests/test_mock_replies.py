"""mock_radius/replies.py: templates encoded once, then per request the State, the Proxy-States
and the signatures; checked with the RFC check of tests/radius_client.py and pyrad."""

from __future__ import annotations

from pyrad import packet as rp

from mock_radius.replies import accounting_reply, build_reply, compile_reply, status_reply
from mock_radius.scenario import Generate, Hex
from radius_codec.codes import Code
from radius_codec.dictionary import dictionary
from radius_codec.packet import parse, walk_attributes
from tests.radius_client import build_request, pyrad_verifies, rfc_reply_problems

SECRET = "s"


def test_a_generated_state_goes_where_the_script_put_it() -> None:
    template = compile_reply(
        Code.ACCESS_CHALLENGE,
        {
            "Reply-Message": ["one", "two"],
            "State": Generate(generate=True),
            "Class": Hex(hex="00ff"),
        },
    )
    assert (template.generates_state, template.state) == (True, None)
    request = build_request(SECRET, "u", "p", proxy_states=[b"p1", b"p2"])
    raw = request.RequestPacket()
    (reply,) = build_reply(parse(raw), SECRET.encode(), template, state=b"minted")
    assert rfc_reply_problems(reply, raw, SECRET.encode()) == []
    assert pyrad_verifies(request, reply, enforce_ma=True)
    assert [(kind, value) for kind, value in walk_attributes(reply)][1:] == [
        (18, b"one"), (18, b"two"), (24, b"minted"), (25, b"\x00\xff"), (33, b"p1"), (33, b"p2")
    ]  # fmt: skip


def test_a_scripted_state_is_issued_as_it_is() -> None:
    template = compile_reply(Code.ACCESS_CHALLENGE, {"State": Hex(hex="abcd")})
    assert (template.generates_state, template.state, template.head) == (
        False, b"\xab\xcd", b"\x18\x04\xab\xcd"
    )  # fmt: skip


def test_status_server_is_answered_with_its_proxy_states() -> None:
    status = rp.AuthPacket(code=Code.STATUS_SERVER, secret=SECRET.encode(), dict=dictionary())
    status.AddAttribute("Proxy-State", b"hop")
    status.add_message_authenticator()
    raw = status.RequestPacket()
    reply = status_reply(parse(raw), SECRET.encode(), Code.ACCOUNTING_RESPONSE)
    assert reply[0] == Code.ACCOUNTING_RESPONSE
    assert rfc_reply_problems(reply, raw, SECRET.encode()) == []
    assert walk_attributes(reply)[0][0] == 80 and walk_attributes(reply)[1:] == [(33, b"hop")]


def test_an_accounting_response_carries_no_message_authenticator() -> None:
    request = rp.AcctPacket(secret=SECRET.encode(), dict=dictionary())
    request["Acct-Status-Type"] = "Start"
    raw = request.RequestPacket()
    template = compile_reply(Code.ACCOUNTING_RESPONSE, {"Reply-Message": "noted"})
    reply = accounting_reply(parse(raw), SECRET.encode(), template)
    assert rfc_reply_problems(reply, raw, SECRET.encode()) == []
    assert walk_attributes(reply) == [(18, b"noted")]
