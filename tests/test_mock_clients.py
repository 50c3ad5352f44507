"""Real RADIUS clients against a scenario folder written the way a user would from the docs,
imitating a small FreeRADIUS test bed: FreeRADIUS's radclient, pyrad's blocking client and
pyrad's asyncio client, each through liveness (Status-Server on both ports), accounting, PAP,
CHAP, a challenge with State, a delayed accept and a reject. Every answer is asserted."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyrad import packet as rp
from pyrad.client import Client, Timeout
from pyrad.client_async import ClientAsync

from mock_radius.pytest_plugin import MockRadius, start_mock_radius
from radius_codec.dictionary import dictionary
from tests.radius_client import radclient

SECRET = "testing123"
DELAY = 1.0  # the approval on the phone, in seconds (time scale 1)
TESTBED = {
    "pap.yaml": """\
# PAP user with accounting, as a NAS would send it (no Message-Authenticator)
name: pap
secret: testing123
requireMessageAuthenticator: false
users: [bob]
steps:
  - name: right-password
    match: {password: hello}
    reply:
      code: Access-Accept
      attributes: {Reply-Message: "Hello, bob", Session-Timeout: 3600}
  - name: wrong-password
    reply:
      code: Access-Reject
      attributes: {Reply-Message: Wrong password}
accounting:
  - name: start
    match: {attributes: {Acct-Status-Type: Start}}
    reply: {}
  - name: stop
    match: {attributes: {Acct-Status-Type: Stop}}
    reply: {}
""",
    "chap.yaml": """\
name: chap
secret: testing123
requireMessageAuthenticator: false
users: [carl]
steps:
  - {name: right, match: {password: chap-pass}, reply: {code: Access-Accept}}
  - name: wrong
    reply: {code: Access-Reject, attributes: {Reply-Message: Wrong password}}
""",
    "otp.yml": """\
# password, then a one-time code with the State of the challenge
name: otp
secret: testing123
requireMessageAuthenticator: false
users: [cora]
steps:
  - name: ask-code
    match: {password: cora-pass, state: absent}
    reply:
      code: Access-Challenge
      attributes: {Reply-Message: Enter your code, State: {generate: true}}
  - name: right-code
    match: {password: "246810", state: issued}
    reply: {code: Access-Accept, attributes: {Reply-Message: Welcome}}
  - name: wrong-code
    match: {state: issued}
    reply: {code: Access-Reject, attributes: {Reply-Message: Wrong code}}
""",
    "push.yaml": f"""\
name: push
secret: testing123
requireMessageAuthenticator: false
users: [dora]
steps:
  - name: approved
    match: {{password: push}}
    delay: {DELAY}
    reply: {{code: Access-Accept, attributes: {{Reply-Message: Approved}}}}
""",
    "deny.yaml": """\
name: deny
secret: testing123
requireMessageAuthenticator: false
users: [eve]
steps:
  - name: denied
    times: always
    reply: {code: Access-Reject, attributes: {Reply-Message: Account disabled}}
""",
}
ACCEPT, REJECT, CHALLENGE = rp.AccessAccept, rp.AccessReject, rp.AccessChallenge
CODES = {ACCEPT: "Access-Accept", REJECT: "Access-Reject", CHALLENGE: "Access-Challenge",
         rp.AccountingResponse: "Accounting-Response"}  # fmt: skip


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockRadius]:
    folder = tmp_path_factory.mktemp("testbed")
    for name, text in TESTBED.items():
        (folder / name).write_text(text)
    server = start_mock_radius(folder)
    yield server
    assert server.stop() == 0


@pytest.fixture
def mark(mock: MockRadius) -> int:
    """Sessions reset; the journal's last entry before the test."""
    mock.control.reset()
    seq: int = mock.control.health()["journal"]["lastSeq"]
    return seq


def _chap(packet: rp.AuthPacket, password: str) -> None:
    packet.authenticator = packet.CreateAuthenticator()
    ident = b"\x11"
    digest = hashlib.md5(ident + password.encode() + packet.authenticator).digest()
    packet["CHAP-Password"] = ident + digest


# What every client must see, as (label, code, Reply-Message or None)
EXPECTED = [
    ("status on the auth port", "Access-Accept", None),
    ("status on the accounting port", "Accounting-Response", None),
    ("accounting start", "Accounting-Response", None),
    ("accounting stop", "Accounting-Response", None),
    ("PAP right", "Access-Accept", "Hello, bob"),
    ("PAP wrong", "Access-Reject", "Wrong password"),
    ("PAP right again", "Access-Accept", "Hello, bob"),
    ("CHAP right", "Access-Accept", None),
    ("CHAP wrong", "Access-Reject", "Wrong password"),
    ("challenge", "Access-Challenge", "Enter your code"),
    ("code with the State", "Access-Accept", "Welcome"),
    ("delayed accept", "Access-Accept", "Approved"),
    ("reject", "Access-Reject", "Account disabled"),
]


def _check(seen: list[tuple[str, str | None, str | None]], mock: MockRadius, mark: int) -> None:
    assert seen == EXPECTED
    health = mock.control.health()
    assert health["errors"] == 0
    entries = mock.control.journal(since=mark)
    assert len(entries) == len(EXPECTED)
    assert {e["outcome"] for e in entries} <= {"matched", "answered-status-server"}, entries


@pytest.mark.slow
def test_radclient(mock: MockRadius, mark: int) -> None:
    seen: list[tuple[str, str | None, str | None]] = []

    def ask(label: str, command: str, attributes: dict[str, str], port: int | None = None,
            **options: Any) -> Any:  # fmt: skip
        address = (mock.host, port or mock.port)
        result = radclient(address, SECRET, attributes, command=command, **options)
        seen.append((label, result.received(), result.attribute("Reply-Message")))
        return result

    status = {"Message-Authenticator": "0x00"}  # RFC 5997: Status-Server carries one
    ask("status on the auth port", "status", status)
    ask("status on the accounting port", "status", status, mock.acct_port)
    session = {"User-Name": "bob", "Acct-Session-Id": '"s-1"'}
    ask("accounting start", "acct", {**session, "Acct-Status-Type": "Start"}, mock.acct_port)
    ask("accounting stop", "acct", {**session, "Acct-Status-Type": "Stop"}, mock.acct_port)
    ask("PAP right", "auth", {"User-Name": "bob", "User-Password": "hello"})
    ask("PAP wrong", "auth", {"User-Name": "bob", "User-Password": "nope"})
    ask("PAP right again", "auth", {"User-Name": "bob", "User-Password": "hello"})
    ask("CHAP right", "auth", {"User-Name": "carl", "CHAP-Password": "chap-pass"})
    ask("CHAP wrong", "auth", {"User-Name": "carl", "CHAP-Password": "nope"})
    challenge = ask("challenge", "auth", {"User-Name": "cora", "User-Password": "cora-pass"})
    state = challenge.attribute("State")
    assert state is not None and state.startswith("0x") and len(state) == 34
    ask("code with the State", "auth",
        {"User-Name": "cora", "User-Password": "246810", "State": state})  # fmt: skip
    started = time.monotonic()
    ask("delayed accept", "auth", {"User-Name": "dora", "User-Password": "push"}, timeout=5)
    assert time.monotonic() - started >= DELAY
    ask("reject", "auth", {"User-Name": "eve", "User-Password": "x"})
    _check(seen, mock, mark)
    unsigned = radclient(mock.address, SECRET, {"NAS-Identifier": "probe"}, command="status",
                         timeout=0.5)  # fmt: skip
    assert unsigned.received() is None  # no Message-Authenticator: dropped, as FreeRADIUS does


def _reply_message(reply: rp.Packet) -> str | None:
    return reply["Reply-Message"][0] if "Reply-Message" in reply else None


@pytest.mark.slow
def test_pyrad_blocking_client(mock: MockRadius, mark: int) -> None:
    client = Client(server=mock.host, authport=mock.port, acctport=mock.acct_port,
                    secret=SECRET.encode(), dict=dictionary(), retries=1, timeout=5,
                    enforce_ma=True)  # fmt: skip
    seen: list[tuple[str, str | None, str | None]] = []

    def ask(label: str, packet: rp.Packet) -> rp.Packet:
        reply = client.SendPacket(packet)
        seen.append((label, CODES[reply.code], _reply_message(reply)))
        return reply

    ask("status on the auth port", client.CreateAuthPacket(code=rp.StatusServer))
    ask("status on the accounting port", client.CreateAcctPacket(code=rp.StatusServer))
    for label, kind in (("accounting start", "Start"), ("accounting stop", "Stop")):
        ask(label, client.CreateAcctPacket(User_Name="bob", Acct_Status_Type=kind,
                                           Acct_Session_Id="s-2"))  # fmt: skip

    def pap(user: str, password: str, state: bytes | None = None) -> rp.AuthPacket:
        packet = client.CreateAuthPacket(User_Name=user, message_authenticator=False)
        packet["User-Password"] = packet.PwCrypt(password)
        if state is not None:
            packet["State"] = state
        return packet

    def chap(user: str, password: str) -> rp.AuthPacket:
        packet = client.CreateAuthPacket(User_Name=user)
        _chap(packet, password)
        return packet

    ask("PAP right", pap("bob", "hello"))
    ask("PAP wrong", pap("bob", "nope"))
    ask("PAP right again", pap("bob", "hello"))
    ask("CHAP right", chap("carl", "chap-pass"))
    ask("CHAP wrong", chap("carl", "nope"))
    state = ask("challenge", pap("cora", "cora-pass"))["State"][0]
    ask("code with the State", pap("cora", "246810", state))
    started = time.monotonic()
    ask("delayed accept", pap("dora", "push"))
    assert time.monotonic() - started >= DELAY
    ask("reject", pap("eve", "x"))
    _check(seen, mock, mark)
    unsigned = client.CreateAuthPacket(code=rp.StatusServer, message_authenticator=False)
    client.timeout = 0.5
    with pytest.raises(Timeout):
        client.SendPacket(unsigned)


@pytest.mark.slow
def test_pyrad_asyncio_client(mock: MockRadius, mark: int) -> None:
    async def run() -> list[tuple[str, str | None, str | None]]:
        client = ClientAsync(server=mock.host, auth_port=mock.port, acct_port=mock.acct_port,
                             secret=SECRET.encode(), dict=dictionary(), retries=1, timeout=5,
                             enforce_ma=True)  # fmt: skip
        await client.initialize_transports(enable_auth=True, enable_acct=True)
        seen: list[tuple[str, str | None, str | None]] = []

        async def ask(label: str, packet: rp.Packet) -> rp.Packet:
            reply = await client.SendPacket(packet)
            seen.append((label, CODES[reply.code], _reply_message(reply)))
            return reply

        def pap(user: str, password: str, state: bytes | None = None) -> rp.AuthPacket:
            packet = client.CreateAuthPacket(User_Name=user)
            packet["User-Password"] = packet.PwCrypt(password)
            if state is not None:
                packet["State"] = state
            return packet

        def chap(user: str, password: str) -> rp.AuthPacket:
            packet = client.CreateAuthPacket(User_Name=user)
            _chap(packet, password)
            return packet

        try:
            await ask("status on the auth port", client.CreateAuthPacket(code=rp.StatusServer))
            await ask("status on the accounting port",
                      client.CreateAcctPacket(code=rp.StatusServer))  # fmt: skip
            for label, kind in (("accounting start", "Start"), ("accounting stop", "Stop")):
                await ask(label, client.CreateAcctPacket(User_Name="bob", Acct_Status_Type=kind,
                                                         Acct_Session_Id="s-3"))  # fmt: skip
            await ask("PAP right", pap("bob", "hello"))
            await ask("PAP wrong", pap("bob", "nope"))
            await ask("PAP right again", pap("bob", "hello"))
            await ask("CHAP right", chap("carl", "chap-pass"))
            await ask("CHAP wrong", chap("carl", "nope"))
            state = (await ask("challenge", pap("cora", "cora-pass")))["State"][0]
            await ask("code with the State", pap("cora", "246810", state))
            started = time.monotonic()
            await ask("delayed accept", pap("dora", "push"))
            assert time.monotonic() - started >= DELAY
            await ask("reject", pap("eve", "x"))
        finally:
            await client.deinitialize_transports()
        return seen

    _check(asyncio.run(run()), mock, mark)


def test_the_testbed_files_validate(tmp_path: Path) -> None:
    """The folder is also what `mock-radius validate` accepts (one .yml among them)."""
    import subprocess
    import sys

    for name, text in TESTBED.items():
        (tmp_path / name).write_text(text)
    result = subprocess.run([sys.executable, "-m", "mock_radius", "validate", str(tmp_path)],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok (") == len(TESTBED)
