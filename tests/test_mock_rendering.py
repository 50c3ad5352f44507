"""mock_radius/rendering.py: packets as the journal shows them."""

from __future__ import annotations

from mock_radius.faults import Fault
from mock_radius.rendering import MASKED, reply_fields, request_fields, shown_octets
from mock_radius.replies import build_reply, compile_reply
from radius_codec.codes import Code
from radius_codec.packet import parse
from tests.radius_client import build_request


def test_a_request_with_its_secrets_masked_and_octets_in_hex() -> None:
    pap = build_request("s", "carol", "secret-pass", state=b"\x00\x01")
    assert request_fields(pap.RequestPacket()) == {
        "attributes": {"User-Name": ["carol"], "User-Password": [MASKED], "State": ["0x0001"],
                       "Message-Authenticator": ["0x" + pap["Message-Authenticator"][0].hex()]},
        "authType": "PAP",
    }  # fmt: skip
    chap = request_fields(build_request("s", "carol", "pw", chap=True).RequestPacket())
    assert chap["authType"] == "CHAP" and chap["attributes"]["CHAP-Password"] == [MASKED]
    bare = request_fields(build_request("s", "carol", message_authenticator=False).RequestPacket())
    assert bare == {"attributes": {"User-Name": ["carol"]}, "authType": None}


def test_a_reply_shows_what_was_scripted_as_far_as_it_parses() -> None:
    raw = build_request("s", "u", "p", proxy_states=[b"hop"]).RequestPacket()
    template = compile_reply(Code.ACCESS_REJECT, {"Reply-Message": "no", "Session-Timeout": 9})
    (reply,) = build_reply(parse(raw), b"s", template, fault=Fault.MALFORMED)
    assert reply_fields(reply) == {
        "code": "Access-Reject",
        "attributes": {"Reply-Message": ["no"], "Session-Timeout": [9]},
    }
    assert shown_octets(template.head) == {"Reply-Message": ["no"], "Session-Timeout": [9]}
