"""Drops lose one transmission, over real UDP: the examples of docs/scenarios.md, taken from the
page itself, run with FreeRADIUS's radclient (``-r 3 -t 1``), with the reference server's own
RADIUS client and with this project's test client. And an Interim-Update no accounting step
fits is answered."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from pyrad import packet as rp

from appgate_mfa_server.mfa.radius_client import RadiusTarget, authenticate
from mock_radius.pytest_plugin import MockRadius
from radius_codec.codes import Code
from radius_codec.dictionary import dictionary
from radius_codec.passwords import AuthProtocol
from tests.radius_client import radclient, send

ROOT = Path(__file__).resolve().parent.parent
SECRET = "testing123"
Factory = Callable[..., MockRadius]


def _example(heading: str) -> str:
    """The first YAML block after ``heading`` in docs/scenarios.md."""
    page = (ROOT / "docs" / "scenarios.md").read_text()
    section = page[page.index(heading) :]
    found = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert found is not None, heading
    return found.group(1)


def _mock(factory: Factory, tmp_path: Path, body: str) -> MockRadius:
    path = tmp_path / "example.yaml"
    path.write_text(f"name: example\nsecret: {SECRET}\n{body}")
    return factory(path)


def _journal(mock: MockRadius) -> list[tuple[str | None, int | None, str]]:
    return [(e.get("step"), e.get("transmission"), e["outcome"]) for e in mock.control.journal()]


LOSE_TWO = "### Drops: one transmission at a time"


@pytest.mark.slow
def test_lose_two_transmissions_then_answer_with_radclient(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    mock = _mock(mock_radius_factory, tmp_path, _example(LOSE_TWO))
    result = radclient(mock.address, SECRET,
                       {"User-Name": "u", "User-Password": "p", "Message-Authenticator": "0x00"},
                       timeout=1.0, retries=3)  # fmt: skip
    assert result.received() == "Access-Accept", result.output
    assert result.attribute("Reply-Message") == "third time lucky"
    assert result.elapsed >= 2.0  # two sends lost, one second each (radclient's -t 1)
    assert _journal(mock) == [
        ("lost", 1, "dropped-by-script"), ("lost", 2, "dropped-by-script"),
        ("answer", 3, "matched"),
    ]  # fmt: skip


@pytest.mark.slow
def test_lose_two_transmissions_then_answer_with_the_servers_client(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    """The reference server's client retransmits the identical request three times within its
    budget (RFC 5080): the third copy is answered."""
    mock = _mock(mock_radius_factory, tmp_path, _example(LOSE_TWO))
    target = RadiusTarget(("127.0.0.1",), mock.port, SECRET.encode(), timeout=3.0,
                          protocol=AuthProtocol.PAP)  # fmt: skip
    response = asyncio.run(authenticate(target, "u", "p"))
    assert (response.code, response.reply_message) == (Code.ACCESS_ACCEPT, "third time lucky")
    assert response.elapsed >= 2 * 3.0 / 3  # two retransmission intervals
    assert [t for _, t, _ in _journal(mock)] == [1, 2, 3]
    again = asyncio.run(authenticate(target, "u", "p"))  # the two uses are spent: at once
    assert again.code == Code.ACCESS_ACCEPT and _journal(mock)[-1] == ("answer", 1, "matched")


def _accounting_stop(session: str) -> rp.AcctPacket:
    packet = rp.AcctPacket(secret=SECRET.encode(), dict=dictionary())
    packet["User-Name"] = "nas-user"
    packet["Acct-Status-Type"] = "Stop"
    packet["Acct-Session-Id"] = session
    return packet


@pytest.mark.slow
def test_the_accounting_example_answers_the_nas_retry(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    mock = _mock(mock_radius_factory, tmp_path,
                 "steps: [{drop: true}]\n" + _example("## Accounting"))  # fmt: skip
    stop = {"User-Name": "nas-user", "Acct-Status-Type": "Stop", "Acct-Session-Id": '"s-1"'}
    result = radclient(mock.acct_address, SECRET, stop, command="acct", timeout=1.0, retries=3)
    assert result.received() == "Accounting-Response", result.output
    assert result.elapsed >= 1.0 + 0.5  # one send lost, then the scripted half-second delay
    assert _journal(mock) == [("lost-stop", 1, "dropped-by-script"), ("stop", 2, "matched")]
    # the same with the project's test client, sending the identical datagram again itself
    mock.control.reset()
    packet = _accounting_stop("s-2")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        raw = packet.RequestPacket()
        assert send(mock.acct_address, packet, sock=udp, timeout=0.3).datagrams == []
        retry = send(mock.acct_address, packet, sock=udp, timeout=3)
        assert retry.raw_request == raw  # the same datagram: a retransmission
    (reply,) = retry.datagrams
    decoded = rp.AcctPacket(packet=reply, secret=SECRET.encode(), dict=dictionary())
    assert packet.VerifyReply(decoded, reply)
    assert _journal(mock)[-2:] == [("lost-stop", 1, "dropped-by-script"), ("stop", 2, "matched")]
    interim = dict(stop, **{"Acct-Status-Type": "Interim-Update"})
    answered = radclient(mock.acct_address, SECRET, interim, command="acct", retries=1)
    assert answered.received() == "Accounting-Response"  # no step for it: answered, at once
    entry = mock.control.journal()[-1]
    assert (entry["outcome"], entry["transmission"], entry["nearMiss"]["step"]) == (
        "mismatch", 1, "start"
    )  # fmt: skip
