"""mock_radius/request_view.py: what the engine sees of a parsed request."""

from __future__ import annotations

import pytest

from mock_radius.request_view import view
from radius_codec.authenticators import MaStatus
from radius_codec.packet import parse
from radius_codec.passwords import AuthProtocol
from tests.radius_client import build_request


def test_a_pap_request() -> None:
    raw = build_request("s", "carol", "pässword", state=b"st", extra={"NAS-Port": 7})
    seen = view(parse(raw.RequestPacket()), b"s", MaStatus.VALID)
    assert (seen.user_name, seen.state, seen.message_authenticator) == ("carol", b"st", True)
    assert (seen.auth_type, seen.chap) == (AuthProtocol.PAP, None)
    assert seen.password_matches("pässword") and not seen.password_matches("password")
    assert seen.clear_password == "pässword"
    assert seen.attributes["NAS-Port"] == [7] and seen.attributes["User-Name"] == ["carol"]
    assert sorted(seen.attributes) == ["Message-Authenticator", "NAS-Port", "State",
                                       "User-Name", "User-Password"]  # fmt: skip
    assert len(seen.attributes) == 5
    with pytest.raises(KeyError):
        seen.attributes["Reply-Message"]
    with pytest.raises(KeyError):
        seen.attributes["No-Such-Attribute"]


def test_a_pap_request_under_another_secret_reveals_no_match() -> None:
    raw = build_request("s", "carol", "pw").RequestPacket()
    seen = view(parse(raw), b"other", MaStatus.INVALID)
    assert not seen.message_authenticator and not seen.password_matches("pw")


def test_a_chap_request_challenged_by_its_authenticator() -> None:
    request = build_request("s", "carol", "pw", chap=True)
    seen = view(parse(request.RequestPacket()), b"s", MaStatus.ABSENT)
    assert seen.auth_type is AuthProtocol.CHAP and not seen.message_authenticator
    assert seen.chap == (request.authenticator, request["CHAP-Password"][0])
    assert seen.password_matches("pw") and not seen.password_matches("pW")
    assert seen.clear_password is None  # CHAP never reveals it


def test_a_chap_challenge_attribute_is_the_challenge() -> None:
    request = build_request("s", "carol", "pw", chap=True, extra={"CHAP-Challenge": b"c" * 16})
    seen = view(parse(request.RequestPacket()), b"s", MaStatus.VALID)
    assert seen.chap is not None and seen.chap[0] == b"c" * 16
    assert not seen.password_matches("pw")  # computed over the authenticator, not this challenge


def test_no_password_at_all() -> None:
    seen = view(parse(build_request("s", "u").RequestPacket()), b"s", MaStatus.VALID)
    assert (seen.auth_type, seen.chap, seen.clear_password) == (None, None, None)
    assert not seen.password_matches("")
