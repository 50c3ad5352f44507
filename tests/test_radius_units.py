"""Unit tests of the server's RADIUS parts: the sealed state and the provider's mode logic
(with a stand-in for the network call), and response verification."""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrad import packet as rp

from appgate_mfa_server.config import RadiusProvider
from appgate_mfa_server.mfa import radius_client as rc
from appgate_mfa_server.mfa.base import (
    Accepted,
    BadState,
    ChallengeAgain,
    NeedsInput,
    Rejected,
    Unavailable,
)
from appgate_mfa_server.mfa.radius import RadiusMfa
from appgate_mfa_server.mfa.sealed_state import StateError, StateSealer, UpstreamState, derive_key
from appgate_mfa_server.push_limit import PushLimit
from appgate_mfa_server.service import _refusal
from appgate_mfa_server.users import UserInfo
from radius_codec.codes import PAP_MAX_LENGTH, Attr, Code
from radius_codec.dictionary import dictionary
from radius_codec.packet import parse
from radius_codec.passwords import AuthProtocol
from tests.radius_client import rfc_reply_problems

SEALER = StateSealer(derive_key(b"k" * 32))
CAROL = UserInfo("corp", "carol", False, "r")
ACCEPT, REJECT, CHALLENGE = Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE


def test_sealed_state_round_trip_and_refusals() -> None:
    sealed = SEALER.seal(UpstreamState(b"\x00\x01state", "10.0.0.1", CAROL.dn, 100.0))
    back = SEALER.unseal(sealed, user=CAROL.dn, now=99.0)
    assert (back.state, back.host) == (b"\x00\x01state", "10.0.0.1")
    with pytest.raises(StateError, match="expired"):
        SEALER.unseal(sealed, user=CAROL.dn, now=100.0)
    with pytest.raises(StateError, match="another user"):
        SEALER.unseal(sealed, user="CN=x,OU=y", now=1.0)
    other = StateSealer(derive_key(b"j" * 32))
    with pytest.raises(StateError, match="not one this server issued"):
        other.unseal(sealed, user=CAROL.dn, now=1.0)


# Sealed by this format's first release (key b"k" * 32): a process of an older release sharing
# the database must be understood (AES-GCM with a 12-byte nonce before the ciphertext).
OLDER_STATE = (
    "NzaRyR3s+wGMkP/U+LPTQ4RLFGIbjthyohw9jAP/2y7zH5gQHx9XBHDjewhXNEFdY/x+PcrB8gghl5+mizUBKA+Ueyzq"
    "tb9nnZFNVky6O4yGXphJQ+JfXUfct5Be9rTNFPYRRO95Jg=="
)


def test_a_state_sealed_by_an_older_release_unseals() -> None:
    back = SEALER.unseal(OLDER_STATE, user=CAROL.dn, now=0.0)
    assert back == UpstreamState(b"\x00\x01state", "10.0.0.1", CAROL.dn, 4102444800.0)


def test_a_mangled_state_is_told_from_a_forged_one() -> None:
    """Malformed (a client's typo: 422) versus not issued here (401): both are refused."""
    sealed = SEALER.seal(UpstreamState(b"s", "10.0.0.1", CAROL.dn, 100.0))
    with pytest.raises(StateError) as junk:  # not skipped over: the state must be exact
        SEALER.unseal(sealed[:8] + "!" + sealed[8:], user=CAROL.dn, now=0.0)
    assert (str(junk.value), junk.value.malformed) == ("must be base64", True)
    with pytest.raises(StateError) as nonce_only:
        SEALER.unseal(base64.b64encode(b"n" * 12).decode(), user=CAROL.dn, now=0.0)
    assert (str(nonce_only.value), nonce_only.value.malformed) == (
        "must be a state from initialize", True,
    )  # fmt: skip
    with pytest.raises(StateError) as forged:
        SEALER.unseal(base64.b64encode(b"n" * 13).decode(), user=CAROL.dn, now=0.0)
    assert (str(forged.value), forged.value.malformed) == (
        "The state is not one this server issued.", False,
    )  # fmt: skip


@given(st.text(max_size=200))
def test_unseal_of_anything_is_a_state_error(text: str) -> None:
    with pytest.raises(StateError):
        SEALER.unseal(text, user=CAROL.dn, now=0.0)


def provider(**fields: Any) -> RadiusProvider:
    base = {"name": "r", "type": "Radius", "hostnames": ["h1", "h2"], "sharedSecret": "s",
            "timeout": 4, "challengeSharedSecret": "chs"}  # fmt: skip
    return RadiusProvider.model_validate({**base, **fields})


class FakeRadius:
    def __init__(self, *responses: rc.RadiusResponse | Exception) -> None:
        self.responses = list(responses)
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, target: rc.RadiusTarget, user: str, password: str, **kw: Any) -> Any:
        self.calls.append({"user": user, "password": password, **kw})
        result = self.responses.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_one_factor_and_push_initialize_contact_nobody() -> None:
    fake = FakeRadius()
    one = RadiusMfa(provider(mode="OneFactor"), sealer=SEALER, clock=lambda: 0, authenticate=fake)
    outcome = run(one.initialize(CAROL, None, None))
    assert outcome.body == {"type": "Challenge", "timeout": 4}
    assert not outcome.challenged  # no Access-Challenge came: not a challenge round
    push = RadiusMfa(
        provider(mode="Push", useUserPassword=True), sealer=SEALER, clock=lambda: 0,
        authenticate=fake,
    )  # fmt: skip
    outcome = run(push.initialize(CAROL, None, None))
    assert outcome.body == {"type": "Push", "timeout": 4, "sendPassword": True}
    assert not outcome.challenged
    assert fake.calls == []
    # every mode counts the Access-Challenges a login gets; only Push limits pushes
    assert (one.max_challenge_rounds, push.max_challenge_rounds) == (5, 5)
    assert (one.push_limit, push.push_limit) == (None, PushLimit(5, 600.0))


def test_challenge_initialize_then_otp_goes_to_the_issuing_host() -> None:
    fake = FakeRadius(
        rc.RadiusResponse(CHALLENGE, "h2", 0.01234, "Code?", b"upstream", None),
        rc.RadiusResponse(ACCEPT, "h2", 0.01),
    )
    mfa = RadiusMfa(provider(mode="Challenge"), sealer=SEALER, clock=lambda: 0, authenticate=fake)
    result = run(mfa.initialize(CAROL, None, None))
    assert result.challenged
    assert result.body["type"] == "Challenge" and result.body["responseMessage"] == "Code?"
    assert result.detail == {"radiusHost": "h2", "radiusMs": 12.3}
    verdict = run(mfa.verify(CAROL, "123456", result.body["state"], None))
    assert isinstance(verdict, Accepted)
    assert fake.calls[0] == {"user": "carol", "password": "chs", "state": None, "hosts": None}
    assert fake.calls[1] == {
        "user": "carol", "password": "123456", "state": b"upstream", "hosts": ("h2",),
    }  # fmt: skip


def test_absent_fields_stay_absent_and_rejects_carry_the_reply_message() -> None:
    fake = FakeRadius(
        rc.RadiusResponse(CHALLENGE, "h1", 0.0),
        rc.RadiusResponse(REJECT, "h1", 0.0, "No way"),
        rc.RadiusResponse(REJECT, "h1", 0.0),
        rc.RadiusResponse(CHALLENGE, "h1", 0.0, "Again", b"s2"),
    )
    mfa = RadiusMfa(provider(mode="OneFactor"), sealer=SEALER, clock=lambda: 0, authenticate=fake)
    challenge = RadiusMfa(
        provider(mode="Challenge"), sealer=SEALER, clock=lambda: 0, authenticate=fake
    )
    assert run(challenge.initialize(CAROL, None, None)).body == {"type": "Challenge", "timeout": 4}
    assert run(mfa.verify(CAROL, "1", None, None)) == Rejected(
        "No way", {"radiusHost": "h1", "radiusMs": 0.0}
    )
    assert run(mfa.verify(CAROL, "1", None, None)).reason == "Rejected by the RADIUS server."
    again = run(mfa.verify(CAROL, "1", None, None))
    assert isinstance(again, ChallengeAgain) and again.body["responseMessage"] == "Again"


def test_no_answer_is_unavailable_and_maps_to_504_or_502() -> None:
    fake = FakeRadius(
        rc.NoAnswer(["h1:1812"], 4.0), rc.NoAnswer(["h1:1812"], 4.0, ["h1 sent junk"])
    )
    mfa = RadiusMfa(provider(mode="OneFactor"), sealer=SEALER, clock=lambda: 0, authenticate=fake)
    timeout = run(mfa.verify(CAROL, "1", None, None))
    assert timeout == Unavailable("No RADIUS server answered within 4 s (tried h1:1812).")
    error = _refusal(timeout)
    assert (error.status, error.id, error.message) == (504, "radius timeout", timeout.message)
    invalid = run(mfa.verify(CAROL, "1", None, None))
    assert isinstance(invalid, Unavailable) and invalid.invalid
    assert (_refusal(invalid).status, _refusal(invalid).id) == (502, "radius invalid response")


def test_outcomes_map_to_the_contracts_errors() -> None:
    needs = _refusal(NeedsInput("userPassword", "is required by this MFA provider"))
    assert (needs.status, needs.body()["errors"]) == (
        422,
        [{"field": "userPassword", "message": "is required by this MFA provider"}],
    )
    assert _refusal(Rejected("No way")).body() == {
        "id": "authentication failed",
        "message": "Authentication failed.",
        "reason": "No way",
    }
    assert _refusal(BadState("must be base64", malformed=True)).status == 422
    forged = _refusal(BadState("The state is not one this server issued."))
    assert (forged.status, forged.body()["reason"]) == (
        401,
        "The state is not one this server issued.",
    )


def test_push_sends_the_shared_secret_or_the_otp() -> None:
    accept = rc.RadiusResponse(ACCEPT, "h1", 0.0)
    fake = FakeRadius(accept, accept)
    plain = RadiusMfa(provider(mode="Push"), sealer=SEALER, clock=lambda: 0, authenticate=fake)
    run(plain.verify(CAROL, "dummy", None, None))
    with_password = RadiusMfa(
        provider(mode="Push", useUserPassword=True), sealer=SEALER, clock=lambda: 0,
        authenticate=fake,
    )  # fmt: skip
    run(with_password.verify(CAROL, "my-password", None, None))
    assert [c["password"] for c in fake.calls] == ["chs", "my-password"]
    assert plain.joins_retries and with_password.joins_retries


def test_challenge_with_user_password_needs_it() -> None:
    mfa = RadiusMfa(
        provider(mode="Challenge", useUserPassword=True), sealer=SEALER, clock=lambda: 0,
        authenticate=FakeRadius(),
    )  # fmt: skip
    assert run(mfa.initialize(CAROL, None, None)) == NeedsInput(
        "userPassword", "is required by this MFA provider"
    )


def _reply_to(request: rc.AccessRequest, *, code: int = Code.ACCESS_ACCEPT, ma: bool = True,
              proxy_state: bytes | None = None) -> bytes:  # fmt: skip
    """A reply built by pyrad (a second implementation) to the request the client built."""
    decoded = rp.AuthPacket(packet=request.raw, secret=request.secret, dict=dictionary())
    reply = decoded.CreateReply(message_authenticator=ma)
    reply.code = code
    reply["Reply-Message"] = "hello"
    if proxy_state is not None:
        reply["Proxy-State"] = proxy_state
    raw = bytes(reply.ReplyPacket())
    assert rfc_reply_problems(raw, request.raw, request.secret) == []  # pyrad built it right
    return raw


def _target(protocol: str) -> rc.RadiusTarget:
    return rc.RadiusTarget(("h",), 1812, b"secret", 1.0, AuthProtocol(protocol))


def test_verify_response() -> None:
    request = rc.build_request(_target("PAP"), "u", "p", None)
    good = _reply_to(request)
    reply, problem = rc.verify_response(request, good, True)
    assert problem is None and reply is not None
    assert (reply.code, reply.first(Attr.REPLY_MESSAGE)) == (Code.ACCESS_ACCEPT, b"hello")
    assert rc.verify_response(request, good[:10], True)[1] == (
        "a malformed response (10 octets, shorter than a RADIUS header)"
    )
    no_ma = _reply_to(request, ma=False)
    assert rc.verify_response(request, no_ma, True)[1] == "a response without Message-Authenticator"
    assert rc.verify_response(request, no_ma, False)[1] is None  # legacy servers, if allowed
    forged = bytearray(good)
    forged[-1] ^= 1  # the Reply-Message's last octet: the Response Authenticator fails first
    assert rc.verify_response(request, bytes(forged), True)[1] == (
        "a response whose Response Authenticator does not verify (wrong shared secret?)"
    )
    other_id = bytearray(good)
    other_id[1] = (other_id[1] + 1) % 256
    assert rc.verify_response(request, bytes(other_id), True)[1] == (
        "a response with another identifier"
    )
    accounting = _reply_to(request, code=Code.ACCOUNTING_RESPONSE, ma=False)
    assert rc.verify_response(request, accounting, False)[1] == (
        "a response with unexpected code 5"
    )
    proxied = _reply_to(request, proxy_state=b"injected")  # BlastRADIUS's signature
    assert rc.verify_response(request, proxied, True)[1] == (
        "a response with a Proxy-State the request did not carry"
    )


def test_a_padded_response_is_accepted() -> None:
    """RFC 2865 section 3: octets past the Length field are padding, to be ignored."""
    request = rc.build_request(_target("CHAP"), "u", "p", None)
    padded = _reply_to(request) + bytes(30)
    reply, problem = rc.verify_response(request, padded, True)
    assert problem is None and reply is not None and reply.first(Attr.REPLY_MESSAGE) == b"hello"


@pytest.mark.parametrize("highest", [False, True])
def test_identifiers_span_0_to_255(monkeypatch: pytest.MonkeyPatch, highest: bool) -> None:
    """The Identifier and the CHAP identifier are one octet each: the lowest and the highest
    value the random source can give make a valid request."""
    monkeypatch.setattr(secrets, "randbelow", lambda n: n - 1 if highest else 0)
    request = rc.build_request(_target("CHAP"), "u", "p", None)
    (chap,) = parse(request.raw).values(Attr.CHAP_PASSWORD)
    assert request.id == chap[0] == (255 if highest else 0)


@given(st.binary(min_size=0, max_size=100))
def test_verify_response_never_raises(raw: bytes) -> None:
    request = rc.build_request(_target("CHAP"), "u", "p", b"state")
    reply, problem = rc.verify_response(request, raw, True)
    assert reply is None and problem


def test_passwords_too_long_for_pap_are_refused_before_the_wire() -> None:
    """RFC 2865 5.2: a User-Password carries at most 128 octets; the codec would raise (a 500)."""
    fake = FakeRadius()
    long = "x" * (PAP_MAX_LENGTH + 1)
    challenge = RadiusMfa(provider(mode="Challenge", useUserPassword=True,
                                   authenticationProtocol="PAP"),
                          sealer=SEALER, clock=lambda: 0, authenticate=fake)  # fmt: skip
    assert run(challenge.initialize(CAROL, long, None)) == NeedsInput(
        "userPassword", "is longer than 128 bytes, the most a RADIUS User-Password carries"
    )
    one = RadiusMfa(provider(mode="OneFactor", authenticationProtocol="PAP"), sealer=SEALER,
                    clock=lambda: 0, authenticate=fake)  # fmt: skip
    refused = run(one.verify(CAROL, "é" * 65, None, None))  # 130 octets in UTF-8
    assert isinstance(refused, NeedsInput) and refused.field == "otp"
    assert fake.calls == []
    chap = RadiusMfa(provider(mode="OneFactor"), sealer=SEALER, clock=lambda: 0,
                     authenticate=FakeRadius(rc.RadiusResponse(ACCEPT, "h1", 0.0)))  # fmt: skip
    assert isinstance(run(chap.verify(CAROL, long, None, None)), Accepted)  # CHAP has no limit
    accepts = FakeRadius(rc.RadiusResponse(ACCEPT, "h1", 0.0))
    at_the_limit = RadiusMfa(provider(mode="OneFactor", authenticationProtocol="PAP"),
                             sealer=SEALER, clock=lambda: 0, authenticate=accepts)  # fmt: skip
    limit = "x" * PAP_MAX_LENGTH
    assert isinstance(run(at_the_limit.verify(CAROL, limit, None, None)), Accepted)


@pytest.mark.parametrize(
    ("session_timeout", "lifetime"),
    [(None, 300.0), (60, 60.0), (7200, 3600.0)],
    ids=["default 300 s", "the server's Session-Timeout", "capped at an hour"],
)
def test_a_challenge_state_lives_as_long_as_the_server_allows(
    session_timeout: int | None, lifetime: float
) -> None:
    fake = FakeRadius(rc.RadiusResponse(CHALLENGE, "h1", 0.0, "Code?", b"up", session_timeout))
    mfa = RadiusMfa(
        provider(mode="Challenge"), sealer=SEALER, clock=lambda: 1000.0, authenticate=fake
    )
    state = run(mfa.initialize(CAROL, None, None)).body["state"]
    assert SEALER.unseal(state, user=CAROL.dn, now=1000.0 + lifetime - 0.1).state == b"up"
    with pytest.raises(StateError, match="expired"):
        SEALER.unseal(state, user=CAROL.dn, now=1000.0 + lifetime + 0.1)


@pytest.mark.parametrize(
    ("mode", "use_password", "guesses"),
    [("Challenge", True, True), ("Challenge", False, False), ("Push", True, False),
     ("OneFactor", False, False)],
)  # fmt: skip
def test_only_a_challenge_sent_the_password_counts_initialize_as_a_guess(
    mode: str, use_password: bool, guesses: bool
) -> None:
    """Only then does initialize send a secret to the RADIUS server (so it counts towards the
    lockout); Push and OneFactor initialize contact nobody."""
    mfa = RadiusMfa(
        provider(mode=mode, useUserPassword=use_password), sealer=SEALER, clock=lambda: 0
    )
    assert mfa.initialize_guesses is guesses


def test_a_state_naming_a_server_configured_away_is_refused() -> None:
    mfa = RadiusMfa(provider(mode="Challenge"), sealer=SEALER, clock=lambda: 0,
                    authenticate=FakeRadius())  # fmt: skip
    state = SEALER.seal(UpstreamState(b"up", "retired-host", CAROL.dn, 300.0))
    assert run(mfa.verify(CAROL, "123456", state, None)) == BadState(
        "The state names a RADIUS server no longer configured. Initialize again."
    )
