"""Every shipped scenario over real UDP, from a pyrad client and from FreeRADIUS's radclient.

One mock process serves the whole scenarios/ folder; each scenario lists its users, so the
scenarios run side by side. Delays run at time scale 0.1.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pyrad import packet as rp

from mock_radius.pytest_plugin import MockRadius
from radius_codec.dictionary import dictionary
from tests.radius_client import build_request, radclient, send

SECRET = "testing123"
SCALE = 0.1
pytestmark = pytest.mark.mock_radius(time_scale=SCALE)  # the module's mock


@pytest.fixture(autouse=True)
def fresh(mock: MockRadius) -> None:
    mock.control.reset()
    mock.control.clear_journal()


def ask(mock: MockRadius, user: str, password: str | None, **options: object) -> rp.AuthPacket:
    exchange = send(mock.address, build_request(SECRET, user, password, **options))  # type: ignore[arg-type]
    reply = exchange.reply()
    assert reply is not None, f"no valid reply for {user}: {exchange.datagrams!r}"
    return reply


# pyrad client


@pytest.mark.parametrize("chap", [False, True], ids=["PAP", "CHAP"])
def test_challenge_right_code(mock: MockRadius, chap: bool) -> None:
    first = ask(mock, "carol", "carol-pass", chap=chap)
    assert first.code == rp.AccessChallenge
    assert first["Reply-Message"] == ["Enter the code shown on your token"]
    assert first["Session-Timeout"] == [60]
    state = first["State"][0]
    assert len(state) == 16
    second = ask(mock, "carol", "123456", state=state, chap=chap)
    assert second.code == rp.AccessAccept
    assert second["Reply-Message"] == ["Welcome"]
    entries = mock.control.journal(user="carol")
    assert [e["step"] for e in entries] == ["challenge", "right-code"]
    assert entries[1]["attributes"]["State"] == ["0x" + state.hex()]
    assert entries[0]["attributes"]["User-Password" if not chap else "CHAP-Password"] == ["***"]


def test_challenge_wrong_code_and_tampered_state(mock: MockRadius) -> None:
    state = ask(mock, "carol", "carol-pass")["State"][0]
    tampered = bytes([state[0] ^ 1]) + state[1:]
    refused = ask(mock, "carol", "123456", state=tampered)
    assert refused.code == rp.AccessReject
    assert "Reply-Message" not in refused  # the hint is journalled, not sent (by default)
    assert "state (expected the one issued)" in mock.control.journal(user="carol")[-1]["hint"]
    wrong = ask(mock, "carol", "000000", state=state)
    assert wrong.code == rp.AccessReject
    assert wrong["Reply-Message"] == ["Wrong code"]
    miss = mock.control.journal(user="carol")[1]
    assert miss["outcome"] == "mismatch"
    assert miss["nearMiss"] == {"step": "right-code", "failed": ["state (expected the one issued)"]}


def test_challenge_twice(mock: MockRadius) -> None:
    first = ask(mock, "chris", "chris-pass")
    second = ask(mock, "chris", "111111", state=first["State"][0])
    assert second.code == rp.AccessChallenge
    assert second["Reply-Message"] == ["Enter the second code"]
    assert second["State"][0] != first["State"][0]
    # the first State is no longer the one issued
    third = ask(mock, "chris", "222222", state=second["State"][0])
    assert third.code == rp.AccessAccept


def test_push_accepted_after_the_delay(mock: MockRadius) -> None:
    exchange = send(mock.address, build_request(SECRET, "paula", "push-secret"))
    reply = exchange.reply()
    assert reply is not None and reply.code == rp.AccessAccept
    assert reply["Reply-Message"] == ["Approved on your phone"]
    assert exchange.elapsed >= 2 * SCALE  # the scripted delay, scaled; an upper bound on a
    # loaded machine is the bench's business, not a test's
    entry = mock.control.journal(user="paula")[-1]
    assert entry["delay"] == pytest.approx(0.2)
    assert entry["sent"] - entry["time"] >= 0.199  # timer resolution


def test_push_denied(mock: MockRadius) -> None:
    exchange = send(mock.address, build_request(SECRET, "pete", "push-secret"))
    reply = exchange.reply()
    assert reply is not None and reply.code == rp.AccessReject
    assert exchange.elapsed >= 1 * SCALE


def test_push_with_password(mock: MockRadius) -> None:
    exchange = send(mock.address, build_request(SECRET, "percy", "percy-pass"))
    reply = exchange.reply()
    assert reply is not None and reply.code == rp.AccessAccept
    assert exchange.elapsed >= 1 * SCALE
    wrong = ask(mock, "percy", "nope")
    assert wrong.code == rp.AccessReject
    assert wrong["Reply-Message"] == ["Wrong password"]


def test_timeout_never_answers(mock: MockRadius) -> None:
    exchange = send(mock.address, build_request(SECRET, "tina", "x"), timeout=0.5)
    assert exchange.datagrams == []
    assert mock.control.journal(user="tina")[-1]["outcome"] == "dropped-by-script"


def test_reject(mock: MockRadius) -> None:
    reply = ask(mock, "rex", "anything")
    assert reply.code == rp.AccessReject
    assert reply["Reply-Message"] == ["Access denied by policy"]


def test_one_factor(mock: MockRadius) -> None:
    assert ask(mock, "olga", "654321").code == rp.AccessAccept
    wrong = ask(mock, "olga", "111111")
    assert wrong.code == rp.AccessReject and wrong["Reply-Message"] == ["Wrong code"]


@pytest.mark.parametrize(
    "user",
    ["fault-ra", "fault-badma", "fault-id", "fault-trunc", "fault-malformed", "fault-noma"],
)
def test_faulty_replies_are_refused_by_a_strict_client(mock: MockRadius, user: str) -> None:
    exchange = send(mock.address, build_request(SECRET, user, "x"))
    assert len(exchange.datagrams) == 1  # something came back...
    assert exchange.reply(enforce_ma=True) is None  # ...and a strict client refuses it


def test_each_fault_breaks_exactly_one_thing(mock: MockRadius) -> None:
    def first(user: str) -> tuple[rp.AuthPacket, bytes]:
        request = build_request(SECRET, user, "x")
        return request, send(mock.address, request).datagrams[0]

    request, raw = first("fault-noma")
    # valid apart from the missing Message-Authenticator: a legacy client would take it
    assert request.VerifyReply(
        rp.AuthPacket(packet=raw, secret=b"testing123", dict=dictionary()), raw
    )
    request, raw = first("fault-id")
    assert raw[1] == (request.id + 1) % 256
    request, raw = first("fault-trunc")
    assert int.from_bytes(raw[2:4], "big") > len(raw)


def test_duplicate_reply(mock: MockRadius) -> None:
    request = build_request(SECRET, "fault-dup", "123456")
    exchange = send(mock.address, request, expect=2)
    assert len(exchange.datagrams) == 2
    assert exchange.datagrams[0] == exchange.datagrams[1]
    reply = exchange.reply()
    assert reply is not None and reply.code == rp.AccessAccept


# FreeRADIUS radclient


def test_radclient_challenge_two_rounds(mock: MockRadius) -> None:
    first = radclient(
        mock.address,
        SECRET,
        {"User-Name": "carol", "User-Password": "carol-pass", "Message-Authenticator": "0x00"},
    )
    assert first.received() == "Access-Challenge", first.output
    assert first.attribute("Reply-Message") == "Enter the code shown on your token"
    state = first.attribute("State")
    assert state is not None and state.startswith("0x")
    second = radclient(
        mock.address,
        SECRET,
        {
            "User-Name": "carol",
            "User-Password": "123456",
            "State": state,
            "Message-Authenticator": "0x00",
        },
    )
    assert second.received() == "Access-Accept", second.output
    assert second.returncode == 0


def _rad(mock: MockRadius, user: str, password: str, **kw: float) -> tuple[str | None, float]:
    result = radclient(
        mock.address,
        SECRET,
        {"User-Name": user, "User-Password": password, "Message-Authenticator": "0x00"},
        **kw,  # type: ignore[arg-type]
    )
    return result.received(), result.elapsed


@pytest.mark.slow
def test_radclient_push_password_timeout_reject_one_factor(mock: MockRadius) -> None:
    received, elapsed = _rad(mock, "paula", "push-secret")
    assert received == "Access-Accept" and elapsed >= 2 * SCALE
    assert _rad(mock, "pete", "push-secret")[0] == "Access-Reject"
    assert _rad(mock, "percy", "percy-pass")[0] == "Access-Accept"
    assert _rad(mock, "percy", "wrong")[0] == "Access-Reject"
    assert _rad(mock, "tina", "x", timeout=0.5, retries=1)[0] is None
    assert _rad(mock, "rex", "x")[0] == "Access-Reject"
    assert _rad(mock, "olga", "654321")[0] == "Access-Accept"
    assert _rad(mock, "olga", "1")[0] == "Access-Reject"
    assert _rad(mock, "chris", "chris-pass")[0] == "Access-Challenge"


@pytest.mark.slow
def test_radclient_without_message_authenticator_gets_no_answer(mock: MockRadius) -> None:
    """The shipped scenarios require a Message-Authenticator: a request without one is dropped
    in silence, as FreeRADIUS does, and the journal says why."""
    attributes = {"User-Name": "olga", "User-Password": "654321"}
    result = radclient(mock.address, SECRET, attributes, timeout=0.5)
    assert result.received() is None and result.returncode != 0
    entry = mock.control.journal(user="olga")[-1]
    assert (entry["outcome"], entry["messageAuthenticator"], entry["scenario"]) == (
        "dropped-no-message-authenticator", "absent", "one-factor"
    )  # fmt: skip
    signed = radclient(mock.address, SECRET, {**attributes, "Message-Authenticator": "0x00"})
    assert signed.received() == "Access-Accept"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("user", "accepted"),
    [
        ("fault-ra", False),
        ("fault-badma", False),
        ("fault-id", False),
        ("fault-trunc", False),
        ("fault-malformed", False),
        ("fault-dup", True),
        ("fault-noma", True),  # radclient 3.2 does not insist on a Message-Authenticator
    ],
)
def test_radclient_sees_the_faults(mock: MockRadius, user: str, accepted: bool) -> None:
    received, _ = _rad(mock, user, "123456", timeout=0.5, retries=1)
    assert (received == "Access-Accept") is accepted


@pytest.mark.slow  # five mock processes
def test_fresh_processes_mint_different_states_unless_seeded(
    mock_radius_factory: Callable[..., MockRadius],
) -> None:
    """Like FreeRADIUS, every fresh mock mints States of its own, so a client cannot lean on a
    State it saw in an earlier run; `--seed` makes a run's States repeat, for a recording."""

    def first_state(*options: str) -> bytes:
        mock = mock_radius_factory("challenge", extra_args=options)
        state: bytes = ask(mock, "carol", "carol-pass")["State"][0]
        assert mock.stop() == 0
        return state

    assert first_state() != first_state()
    assert first_state("--seed", "7") == first_state("--seed", "7") != first_state("--seed", "8")
