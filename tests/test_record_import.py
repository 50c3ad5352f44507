"""Recording real exchanges through the proxy, importing captures, and replaying both."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyrad import packet as rp

from mock_radius.pytest_plugin import MockRadius
from mock_radius.scenario import load_scenario
from radius_codec.dictionary import dictionary
from tests.conftest import wait_for_ready_line
from tests.radius_client import build_request, radclient, send

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SECRET = "testing123"
Factory = Callable[..., MockRadius]


PROBE = 0.3  # seconds the recorder's probe waits for an answer without a Message-Authenticator
_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_recorder_left() -> Iterator[None]:
    """A test that fails half-way leaves no recorder running."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def _recorder(
    upstream: MockRadius, out: Path, *extra: str
) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    process, ready = _recording(upstream.port, upstream.acct_port, out, *extra)
    return process, ("127.0.0.1", ready["port"])


def _recording(
    port: int, acct_port: int | None, out: Path, *extra: str
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """``mock-radius record`` in front of 127.0.0.1:port; its ready line."""
    accounting = [] if acct_port is None else ["--upstream-acct", f"127.0.0.1:{acct_port}"]
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_radius", "record", "--listen", "127.0.0.1:0",
         "--upstream", f"127.0.0.1:{port}", *accounting, "--secret", SECRET, "--out", str(out),
         "--upstream-timeout", "0.5", "--probe-timeout", str(PROBE), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _STARTED.append(process)
    assert process.stdout is not None
    return process, wait_for_ready_line(process.stdout)


def _lenient(tmp_path: Path) -> Path:
    """The shipped scenarios, answering requests without a Message-Authenticator too."""
    folder = tmp_path / "lenient"
    folder.mkdir()
    for path in SCENARIOS.glob("*.yaml"):
        text = path.read_text().replace(
            "secret: testing123\n", "secret: testing123\nrequireMessageAuthenticator: false\n"
        )
        (folder / path.name).write_text(text)  # fmt: skip
    return folder


def _flow(
    address: tuple[str, int], chap: dict[str, rp.AuthPacket] | None = None
) -> list[dict[str, Any]]:
    """A challenge round trip (PAP), a delayed push (CHAP), a timeout; what the client saw.
    CHAP requests are kept in ``chap`` and sent again byte for byte on replay: a recording
    matches a CHAP step by its exact CHAP-Password and challenge."""
    seen: list[dict[str, Any]] = []
    chap = {} if chap is None else chap

    def ask(user: str, password: str, **options: Any) -> rp.AuthPacket | None:
        if options.get("chap"):
            request = chap.setdefault(user, build_request(SECRET, user, password, **options))
        else:
            request = build_request(SECRET, user, password, **options)
        exchange = send(address, request, timeout=1.5)
        reply = exchange.reply()
        seen.append({
            "user": user,
            "code": None if reply is None else reply.code,
            "attributes": None if reply is None else {
                k: reply[k]
                for k in reply.keys()  # noqa: SIM118 - pyrad: names; iteration: codes
                if k != "Message-Authenticator"
            },
            "elapsed": exchange.elapsed,
        })  # fmt: skip
        return reply

    challenge = ask("carol", "carol-pass")
    assert challenge is not None
    ask("carol", "123456", state=challenge["State"][0])
    ask("paula", "push-secret", chap=True)
    ask("tina", "x")
    return seen


@pytest.mark.slow
def test_record_then_replay_gives_the_same_replies(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    upstream = mock_radius_factory(SCENARIOS, time_scale=0.2)  # push delay 0.4 s
    out = tmp_path / "recorded.yaml"
    recorder, address = _recorder(upstream, out, "--keep-timing")
    chap: dict[str, rp.AuthPacket] = {}
    live = _flow(address, chap)
    recorder.send_signal(signal.SIGTERM)
    stdout, stderr = recorder.communicate(timeout=10)
    assert recorder.returncode == 0, stderr
    assert json.loads(stdout.splitlines()[-1]) == {
        "event": "written", "out": str(out), "exchanges": 4,
    }  # fmt: skip
    assert "did not answer a request of 'tina'" in stderr
    assert "the upstream requires a Message-Authenticator" in stderr  # learned by the probe
    assert not out.with_name(out.name + ".partial").exists()
    text = out.read_text()
    assert text.startswith("# Recorded ") and "carol-pass" not in text  # hashed by default
    assert (
        f"# Message-Authenticator: the upstream requires one (a request without one got no "
        f"answer within {PROBE:g} s; the same with one was answered)." in text
    )
    scenario = load_scenario(out)
    assert scenario.require_message_authenticator is True
    assert [s.name for s in scenario.steps] == ["carol-1", "carol-2", "paula-1", "tina-1"]
    assert scenario.steps[3].drop and scenario.steps[3].times == 1  # one transmission lost
    check = subprocess.run(
        [sys.executable, "-m", "mock_radius", "validate", str(out)], capture_output=True, text=True
    )
    assert check.returncode == 0

    replay = mock_radius_factory(out)
    replayed = _flow(replay.address, chap)
    for before, after in zip(live, replayed, strict=True):
        assert (after["user"], after["code"], after["attributes"]) == (
            before["user"], before["code"], before["attributes"],
        )  # fmt: skip
    push_live, push_replay = live[2]["elapsed"], replayed[2]["elapsed"]
    assert push_live >= 0.4 and push_replay >= 0.4  # the observed delay is replayed
    # the CHAP step holds the recorded exchange, not "any password"
    replay.control.reset()
    other = send(replay.address, build_request(SECRET, "paula", "guess", chap=True)).reply()
    assert other is not None and other.code == rp.AccessReject
    assert replay.control.journal()[-1]["nearMiss"]["failed"] == ["chap"]
    assert "challenge:" in text and "response:" in text


# (user, password, send the State of the previous reply): 24 exchanges over the shipped
# scenarios, repeated logins and wrong answers included
RADCLIENT_FLOW = [
    ("carol", "carol-pass", False), ("carol", "123456", True),
    ("carol", "carol-pass", False), ("carol", "000000", True),
    ("carol", "carol-pass", False), ("carol", "123456", True),
    ("olga", "654321", False), ("olga", "111111", False), ("olga", "654321", False),
    ("rex", "x", False),
    ("chris", "chris-pass", False), ("chris", "111111", True), ("chris", "222222", True),
    ("percy", "percy-pass", False), ("percy", "wrong", False),
    ("pete", "push-secret", False), ("paula", "push-secret", False), ("tina", "x", False),
    ("olga", "654321", False), ("olga", "000000", False),
    ("carol", "carol-pass", False), ("carol", "123456", True),
    ("rex", "y", False), ("olga", "654321", False),
]  # fmt: skip


def _radclient_flow(address: tuple[str, int]) -> list[tuple[str | None, str | None, str | None]]:
    """The flow with radclient, which sends no Message-Authenticator unless told to; what it
    received: (code, Reply-Message, State)."""
    seen: list[tuple[str | None, str | None, str | None]] = []
    state: str | None = None
    for user, password, with_state in RADCLIENT_FLOW:
        attributes = {"User-Name": user, "User-Password": password}
        if with_state:
            assert state is not None
            attributes["State"] = state
        result = radclient(address, SECRET, attributes, timeout=1.0)
        assert "Message-Authenticator" not in result.output.split("Received")[0]
        state = result.attribute("State")
        seen.append((result.received(), result.attribute("Reply-Message"), state))
    return seen


@pytest.mark.slow
def test_record_clients_without_message_authenticator_then_replay(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    """An upstream that answers requests without a Message-Authenticator: the probe learns it,
    requests go out as radclient sent them, and the file says so."""
    upstream = mock_radius_factory(_lenient(tmp_path), time_scale=0.1)
    out = tmp_path / "radclient.yaml"
    recorder, address = _recorder(upstream, out)
    live = _radclient_flow(address)
    recorder.send_signal(signal.SIGINT)
    _, stderr = recorder.communicate(timeout=10)
    assert recorder.returncode == 0, stderr
    assert "does not require a Message-Authenticator (it answered a request without one)" in (
        stderr
    )
    assert {e["messageAuthenticator"] for e in upstream.control.journal()} == {"absent"}
    assert [code for code, _, _ in live].count(None) == 1  # tina: no answer
    assert live[1] == ("Access-Accept", "Welcome", None)
    assert live[3] == ("Access-Reject", "Wrong code", None)
    assert live[8] == ("Access-Accept", "Welcome", None)  # olga's second right login
    scenario = load_scenario(out)
    assert scenario.require_message_authenticator is False  # as the upstream behaved
    assert len(scenario.steps) == 24

    replay = mock_radius_factory(out)
    assert _radclient_flow(replay.address) == live  # codes, Reply-Messages, State chains
    assert {e["outcome"] for e in replay.control.journal()} == {"matched", "dropped-by-script"}
    # a State the replay already used is not accepted again, though a later step wants one
    used = live[0][2]
    assert used is not None
    again = radclient(replay.address, SECRET,
                      {"User-Name": "carol", "User-Password": "123456", "State": used})  # fmt: skip
    assert again.received() == "Access-Reject"
    assert replay.control.journal()[-1]["outcome"] == "mismatch"


@pytest.mark.slow
def test_recorded_passwords_must_match_on_replay(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    upstream = mock_radius_factory(SCENARIOS)
    out = tmp_path / "one.yaml"
    recorder, address = _recorder(upstream, out, "--max-exchanges", "1")
    reply = send(address, build_request(SECRET, "olga", "654321")).reply()
    assert reply is not None and reply.code == rp.AccessAccept
    assert recorder.wait(10) == 0  # stopped by itself after one exchange
    replay = mock_radius_factory(out)
    wrong = send(replay.address, build_request(SECRET, "olga", "000000")).reply()
    assert wrong is not None and wrong.code == rp.AccessReject
    assert replay.control.journal()[-1]["nearMiss"]["failed"] == ["passwordHash"]
    right = send(replay.address, build_request(SECRET, "olga", "654321")).reply()
    assert right is not None and right.code == rp.AccessAccept


@pytest.mark.slow
def test_recorder_with_the_wrong_client_secret_and_nothing_recorded(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    upstream = mock_radius_factory(SCENARIOS)
    out = tmp_path / "nothing.yaml"
    recorder, address = _recorder(upstream, out)
    assert send(address, build_request("not-the-secret", "olga", "1"), timeout=0.5).datagrams == []
    recorder.send_signal(signal.SIGINT)
    _, stderr = recorder.communicate(timeout=10)
    assert recorder.returncode == 1
    assert (
        "fails its Message-Authenticator check: is --secret the client's shared secret?" in stderr
    )
    assert "nothing was recorded; no file written" in stderr
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


@pytest.mark.slow
def test_recorder_with_the_wrong_upstream_secret(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    upstream = mock_radius_factory(SCENARIOS, extra_args=())
    out = tmp_path / "bad-upstream.yaml"
    recorder, address = _recorder(upstream, out, "--upstream-secret", "wrong")
    assert send(address, build_request(SECRET, "rex", "x"), timeout=1.0).datagrams == []
    recorder.send_signal(signal.SIGTERM)
    _, stderr = recorder.communicate(timeout=10)
    # the mock drops requests it cannot authenticate, so the upstream "never answers"
    assert "did not answer a request of 'rex'" in stderr
    assert "Requests that got no answer from the upstream (drops): 1." in out.read_text()


# captures


def _capture_flow(mock: MockRadius) -> list[tuple[float, tuple[str, int], tuple[str, int], bytes]]:
    """Real datagrams of a challenge flow and a one-factor login, with their times."""
    frames: list[tuple[float, tuple[str, int], tuple[str, int], bytes]] = []

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        client = udp.getsockname()

        def exchange(request: rp.AuthPacket) -> rp.AuthPacket:
            raw = request.RequestPacket()
            frames.append((time.time(), client, mock.address, raw))
            result = send(mock.address, request, sock=udp)
            frames.append((time.time(), mock.address, client, result.datagrams[0]))
            reply = result.reply()
            assert reply is not None
            return reply

        challenge = exchange(build_request(SECRET, "carol", "carol-pass"))
        exchange(build_request(SECRET, "carol", "123456", state=challenge["State"][0]))
        exchange(build_request(SECRET, "olga", "654321"))
    return frames


def _write_capture(frames: list[Any], path: Path, *, ng: bool = False, junk: bool = True) -> None:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap, wrpcapng

    packets = []
    for when, (src, sport), (dst, dport), payload in frames:
        frame = Ether() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload)
        frame.time = when
        packets.append(frame)
    if junk:
        noise = (
            Ether()
            / IP(src="127.0.0.1", dst="127.0.0.1")
            / UDP(sport=5353, dport=53)
            / Raw(b"\x12\x34dns?")
        )
        web = Ether() / IP() / TCP(dport=80) / Raw(b"GET / HTTP/1.1\r\n\r\n")
        packets[1:1] = [noise, web]
    (wrpcapng if ng else wrpcap)(str(path), packets)


def _import(
    capture: Path, out: Path, *extra: str, secret: str = SECRET
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mock_radius", "import", str(capture), "--secret", secret,
         "--out", str(out), *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("ng", [False, True], ids=["pcap", "pcapng"])
def test_import_a_capture_and_replay_it(
    mock_radius_factory: Factory, tmp_path: Path, ng: bool
) -> None:
    live = mock_radius_factory(SCENARIOS)
    frames = _capture_flow(live)
    capture = tmp_path / ("flow.pcapng" if ng else "flow.pcap")
    _write_capture(frames, capture, ng=ng)
    out = tmp_path / "imported.yaml"
    result = _import(capture, out)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert f"the capture {capture.name}" in text
    assert "7 UDP datagrams read, 1 not RADIUS." in text  # 6 RADIUS + 1 DNS; TCP is not UDP
    scenario = load_scenario(out)
    assert [s.name for s in scenario.steps] == ["carol-1", "carol-2", "olga-1"]
    replay = mock_radius_factory(out)
    first = send(replay.address, build_request(SECRET, "carol", "carol-pass")).reply()
    assert first is not None and first.code == rp.AccessChallenge
    original_state = rp.AuthPacket(packet=frames[1][3], secret=SECRET.encode(), dict=dictionary())[
        24
    ][0]
    assert first["State"] == [original_state]  # the State chain is the recorded one
    second = send(
        replay.address, build_request(SECRET, "carol", "123456", state=first["State"][0])
    ).reply()
    assert second is not None and second.code == rp.AccessAccept
    olga = send(replay.address, build_request(SECRET, "olga", "654321")).reply()
    assert olga is not None and olga.code == rp.AccessAccept


@pytest.mark.slow
def test_import_refuses_bad_input(mock_radius_factory: Factory, tmp_path: Path) -> None:
    frames = _capture_flow(mock_radius_factory(SCENARIOS))
    capture = tmp_path / "flow.pcap"
    _write_capture(frames, capture)
    out = tmp_path / "out.yaml"

    wrong = _import(capture, out, secret="not-the-secret")
    assert wrong.returncode == 1
    assert "none verifies with this secret (wrong --secret?)" in wrong.stderr
    assert not out.exists()

    cut = tmp_path / "cut.pcap"
    cut.write_bytes(capture.read_bytes()[:-30])
    truncated = _import(cut, out)
    assert truncated.returncode == 1 and "the capture is truncated" in truncated.stderr
    assert not out.exists()
    allowed = _import(cut, out, "--allow-truncated")
    assert allowed.returncode == 0, allowed.stderr
    assert "# PARTIAL: the capture is truncated" in out.read_text()

    only_noise = tmp_path / "noise.pcap"
    _write_capture([], only_noise)
    noise = _import(only_noise, tmp_path / "noise.yaml")
    assert (
        noise.returncode == 1 and "no RADIUS Access-Request among 1 UDP datagrams" in noise.stderr
    )

    not_a_capture = tmp_path / "text.pcap"
    not_a_capture.write_text("hello")
    garbage = _import(not_a_capture, tmp_path / "g.yaml")
    assert garbage.returncode == 1 and "not a pcap or pcapng capture" in garbage.stderr
    assert "Traceback" not in garbage.stderr + noise.stderr + truncated.stderr + wrong.stderr


# what the recorder learns: the upstream's Message-Authenticator rule, passwords, accounting


def _stop(recorder: subprocess.Popen[str]) -> str:
    recorder.send_signal(signal.SIGTERM)
    _, stderr = recorder.communicate(timeout=10)
    assert recorder.returncode == 0, stderr
    return stderr


@pytest.mark.slow
def test_an_upstream_that_requires_message_authenticator_is_recorded_as_such(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    """radclient sends none; the shipped scenarios require one (dropped in silence, as
    FreeRADIUS): the probe learns it, the proxy signs what it forwards, and the replay drops
    radclient's requests as the upstream would have."""
    upstream = mock_radius_factory(SCENARIOS)
    out = tmp_path / "strict.yaml"
    recorder, address = _recorder(upstream, out)
    plain = {"User-Name": "olga", "User-Password": "654321"}
    assert radclient(address, SECRET, plain).received() == "Access-Accept"  # the probe, signed
    assert radclient(address, SECRET, plain).received() == "Access-Accept"
    assert "the upstream requires a Message-Authenticator" in _stop(recorder)
    seen = [e["messageAuthenticator"] for e in upstream.control.journal()]
    assert seen == ["absent", "valid", "valid"]  # the bare probe (dropped), then signed ones
    assert upstream.control.journal()[0]["outcome"] == "dropped-no-message-authenticator"
    assert load_scenario(out).require_message_authenticator is True
    replay = mock_radius_factory(out)
    assert radclient(replay.address, SECRET, plain, timeout=0.5).received() is None
    signed = {**plain, "Message-Authenticator": "0x00"}
    assert radclient(replay.address, SECRET, signed).received() == "Access-Accept"


@pytest.mark.slow
def test_with_passwords_chap_and_pap_replays_check_the_password(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    upstream = mock_radius_factory(SCENARIOS)
    passwords = tmp_path / "passwords.txt"
    passwords.write_text("# user:password\nolga:654321\ncarol:carol-pass\n\n")
    out = tmp_path / "passwords.yaml"
    recorder, address = _recorder(upstream, out, "--passwords", str(passwords),
                                  "--password", "chris:chris-pass")  # fmt: skip

    def code(at: tuple[str, int], user: str, password: str, **options: Any) -> int | None:
        reply = send(at, build_request(SECRET, user, password, **options)).reply()
        return None if reply is None else int(reply.code)

    recorded = [
        code(address, "olga", "654321", chap=True),  # CHAP, verified against the listed one
        code(address, "olga", "654321"),  # PAP, the listed one
        code(address, "olga", "111111", chap=True),  # CHAP with another: rejected upstream
        code(address, "chris", "chris-pass", chap=True),  # --password on the command line
        code(address, "rex", "whatever", chap=True),  # nobody listed: exact CHAP
    ]
    assert recorded == [rp.AccessAccept, rp.AccessAccept, rp.AccessReject, rp.AccessChallenge,
                        rp.AccessReject]  # fmt: skip
    _stop(recorder)
    text = out.read_text()
    assert "# Passwords: 4 steps hold the password given with --passwords, in" in text
    assert "a CHAP response can only be checked against the password itself" in text
    assert "# 1 CHAP steps match the recorded CHAP-Password and challenge" in text
    steps = load_scenario(out).steps
    conditions = [(s.match.password, s.match.not_password, s.match.chap is not None)
                  for s in steps]  # fmt: skip
    assert conditions == [("654321", None, False), ("654321", None, False),
                          (None, "654321", False), ("chris-pass", None, False),
                          (None, None, True)]  # fmt: skip

    replay = mock_radius_factory(out)
    # new requests (new challenges), in the recorded order of each user: the password decides
    assert code(replay.address, "olga", "654321", chap=True) == rp.AccessAccept
    assert code(replay.address, "olga", "654321", chap=True) == rp.AccessAccept  # PAP step
    assert code(replay.address, "olga", "222222", chap=True) == rp.AccessReject  # any wrong one
    assert replay.control.journal()[-1]["step"] == "olga-3"  # the recorded reject, replayed
    assert code(replay.address, "chris", "wrong", chap=True) == rp.AccessReject
    assert replay.control.journal()[-1]["outcome"] == "mismatch"  # chris-1 wants chris-pass
    assert code(replay.address, "chris", "chris-pass") == rp.AccessChallenge  # PAP too


def test_a_passwords_file_that_is_not_one_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "passwords.txt"
    bad.write_text("olga:654321\njust-a-name\n")
    result = subprocess.run(
        [sys.executable, "-m", "mock_radius", "record", "--listen", "127.0.0.1:0", "--upstream",
         "127.0.0.1:9", "--secret", SECRET, "--out", str(tmp_path / "x.yaml"),
         "--passwords", str(bad)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == f"mock-radius record: {bad}:2: expected USER:PASSWORD"


ACCOUNTING_UPSTREAM = """\
name: nas
secret: testing123
users: [nas-user]
steps: [{times: always, reply: {code: Access-Accept}}]
accounting:
  - {name: start, match: {attributes: {Acct-Status-Type: Start}},
     reply: {attributes: {Reply-Message: noted}}}
  - {name: stop, match: {attributes: {Acct-Status-Type: Stop}}, drop: true, times: always}
"""


@pytest.mark.slow
def test_accounting_and_status_server_are_relayed_and_recorded(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    (tmp_path / "nas.yaml").write_text(ACCOUNTING_UPSTREAM)
    upstream = mock_radius_factory(tmp_path / "nas.yaml")
    out = tmp_path / "accounting.yaml"
    recorder, ready = _recording(upstream.port, upstream.acct_port, out, "--upstream-timeout", "5")
    auth, acct = ("127.0.0.1", ready["port"]), ("127.0.0.1", ready["acctPort"])
    session = {"User-Name": "nas-user", "Acct-Session-Id": '"s-1"'}

    def accounting(kind: str, **options: Any) -> Any:
        return radclient(acct, SECRET, {**session, "Acct-Status-Type": kind}, command="acct",
                         **options)  # fmt: skip

    status = {"Message-Authenticator": "0x00"}
    live = [
        radclient(auth, SECRET, status, command="status").received(),
        radclient(acct, SECRET, status, command="status").received(),
        accounting("Start").received(),
        accounting("Start").attribute("Reply-Message"),
        accounting("Interim-Update").received(),  # no step for it upstream: answered
    ]
    assert live == ["Access-Accept", "Accounting-Response", "Accounting-Response", "noted",
                    "Accounting-Response"]  # fmt: skip
    stop = _accounting_request("Stop")  # the upstream drops it: sent twice, the same datagram
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for _ in range(2):
            assert send(acct, stop, sock=udp, timeout=0.1).datagrams == []
    _stop(recorder)  # before the upstream timeout: still waiting, so recorded as a drop
    text = out.read_text()
    assert "# Status-Server: 2 relayed, 2 answered by the upstream" in text
    scenario = load_scenario(out)
    assert scenario.accounting is not None
    recorded = [(s.name, s.match.attributes["Acct-Status-Type"], s.drop, s.times)
                for s in scenario.accounting]  # fmt: skip
    assert recorded == [
        ("nas-user-acct-1", "Start", False, 1), ("nas-user-acct-2", "Start", False, 1),
        ("nas-user-acct-3", "Interim-Update", False, 1),
        ("nas-user-acct-4", "Stop", True, 2),  # lost both transmissions
    ]  # fmt: skip
    assert [s.name for s in scenario.steps] == ["no-access-request-recorded"]

    replay = mock_radius_factory(out)
    replayed = [
        accounting_at(replay, "Start").attribute("Reply-Message"),
        accounting_at(replay, "Start").received(),
        accounting_at(replay, "Interim-Update").received(),
        accounting_at(replay, "Stop", timeout=0.3, retries=2).received(),
    ]
    assert replayed == ["noted", "Accounting-Response", "Accounting-Response", None]
    steps = [(e["step"], e["transmission"]) for e in replay.control.journal()]
    assert steps == [("nas-user-acct-1", 1), ("nas-user-acct-2", 1), ("nas-user-acct-3", 1),
                     ("nas-user-acct-4", 1), ("nas-user-acct-4", 2)]  # fmt: skip


def _accounting_request(kind: str) -> rp.AcctPacket:
    packet = rp.AcctPacket(secret=SECRET.encode(), dict=dictionary())
    packet["User-Name"] = "nas-user"
    packet["Acct-Status-Type"] = kind
    packet["Acct-Session-Id"] = "s-1"
    return packet


def accounting_at(mock: MockRadius, kind: str, **options: Any) -> Any:
    attributes = {"User-Name": "nas-user", "Acct-Session-Id": '"s-2"', "Acct-Status-Type": kind}
    return radclient(mock.acct_address, SECRET, attributes, command="acct", **options)


# FreeRADIUS as the upstream (Debian's freeradius package; .ci/run installs it)

FREERADIUS_CONF = """\
# the smallest FreeRADIUS 3.2 that answers PAP, CHAP, accounting and Status-Server, and drops
# requests without a Message-Authenticator (require_message_authenticator)
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
libdir = /usr/lib/freeradius
logdir = @DIR@
raddbdir = @DIR@
radacctdir = @DIR@
confdir = @DIR@
run_dir = @DIR@
db_dir = @DIR@
pidfile = @DIR@/radiusd.pid
name = freeradius
hostname_lookups = no
log {
\tdestination = stderr
\tauth = no
}
security {
\tallow_vulnerable_openssl = yes
\treject_delay = 0
\tstatus_server = yes
}
thread pool {
\tstart_servers = 1
\tmax_servers = 1
\tmin_spare_servers = 1
\tmax_spare_servers = 1
}
client localhost {
\tipaddr = 127.0.0.1
\tsecret = testing123
\trequire_message_authenticator = yes
}
modules {
\tpap {
\t}
\tchap {
\t}
\talways ok {
\t\trcode = ok
\t}
\tfiles {
\t\tfilename = @DIR@/users
\t}
}
server default {
\tlisten {
\t\ttype = auth
\t\tipaddr = 127.0.0.1
\t\tport = @AUTH@
\t}
\tlisten {
\t\ttype = acct
\t\tipaddr = 127.0.0.1
\t\tport = @ACCT@
\t}
\tauthorize {
\t\tfiles
\t\tchap
\t\tpap
\t}
\tauthenticate {
\t\tAuth-Type PAP {
\t\t\tpap
\t\t}
\t\tAuth-Type CHAP {
\t\t\tchap
\t\t}
\t}
\taccounting {
\t\tok
\t}
}
"""
FREERADIUS_USERS = 'olga\tCleartext-Password := "654321"\n\tReply-Message := "Hello, olga"\n'


def _free_udp_ports(count: int) -> list[int]:

    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.fixture
def freeradius(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """FreeRADIUS in the foreground (``-f``, no debug output: it is ready in about a second)
    with a config of its own in a temp folder; (auth port, accounting port)."""
    import selectors
    import shutil

    binary = shutil.which("freeradius") or shutil.which("radiusd")
    if binary is None:
        pytest.fail("this test needs FreeRADIUS: `apt-get install freeradius` (bash .ci/run does)")
    folder = tmp_path / "raddb"
    folder.mkdir()
    auth, acct = _free_udp_ports(2)
    conf = FREERADIUS_CONF.replace("@DIR@", str(folder))
    (folder / "radiusd.conf").write_text(
        conf.replace("@AUTH@", str(auth)).replace("@ACCT@", str(acct))
    )
    (folder / "users").write_text(FREERADIUS_USERS)
    process = subprocess.Popen([binary, "-f", "-d", str(folder)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stderr is not None
    try:
        selector = selectors.DefaultSelector()
        selector.register(process.stderr, selectors.EVENT_READ)
        deadline, said = time.monotonic() + 20, []
        while time.monotonic() < deadline and selector.select(deadline - time.monotonic()):
            line = process.stderr.readline()
            said.append(line)
            if not line or "Ready to process requests" in line:
                break
        assert said and "Ready to process requests" in said[-1], "".join(said)
        yield auth, acct
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.slow
def test_record_freeradius_then_replay_it(
    freeradius: tuple[int, int], mock_radius_factory: Factory, tmp_path: Path
) -> None:
    auth, acct = freeradius
    out = tmp_path / "freeradius.yaml"
    recorder, ready = _recording(auth, acct, out, "--password", "olga:654321")
    proxy, proxy_acct = ("127.0.0.1", ready["port"]), ("127.0.0.1", ready["acctPort"])

    def flow(address: tuple[str, int], acct_address: tuple[str, int]) -> list[Any]:
        """PAP and CHAP right (new challenges each time), CHAP wrong, accounting, liveness."""
        seen: list[Any] = []
        for password, chap in (("654321", False), ("654321", True), ("65432", True)):
            reply = send(address, build_request(SECRET, "olga", password, chap=chap)).reply()
            assert reply is not None
            seen.append((reply.code, reply.get("Reply-Message")))
        start = {"User-Name": "olga", "Acct-Status-Type": "Start", "Acct-Session-Id": '"s"'}
        seen.append(radclient(acct_address, SECRET, start, command="acct").received())
        status = {"Message-Authenticator": "0x00"}
        seen.append(radclient(address, SECRET, status, command="status").received())
        return seen

    live = flow(proxy, proxy_acct)
    hello = ["Hello, olga"]  # the users file's reply item: FreeRADIUS sends it with a Reject too
    assert live == [(rp.AccessAccept, hello), (rp.AccessAccept, hello), (rp.AccessReject, hello),
                    "Accounting-Response", "Access-Accept"]  # fmt: skip
    stderr = _stop(recorder)
    assert "the upstream requires a Message-Authenticator" in stderr  # FreeRADIUS dropped it
    text = out.read_text()
    assert "# Status-Server: 1 relayed, 1 answered by the upstream" in text
    scenario = load_scenario(out)
    assert scenario.require_message_authenticator is True
    assert [(s.match.password, s.match.not_password) for s in scenario.steps] == [
        ("654321", None), ("654321", None), (None, "654321")
    ]  # fmt: skip
    assert scenario.accounting is not None and len(scenario.accounting) == 1

    replay = mock_radius_factory(out)
    assert flow(replay.address, replay.acct_address) == live  # new CHAP challenges pass
    unsigned = radclient(replay.address, SECRET, {"User-Name": "olga", "User-Password": "654321"},
                         timeout=0.5)  # fmt: skip
    assert unsigned.received() is None  # as FreeRADIUS: no Message-Authenticator, no answer
