"""Recording real exchanges through the proxy, importing captures, and replaying both."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyrad import packet as rp

from mock_radius.pytest_plugin import MockRadius
from mock_radius.scenario import load_scenario
from tests.conftest import wait_for_json_line
from tests.radius_client import build_request, radclient, send

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SECRET = "testing123"
Factory = Callable[..., MockRadius]


def _recorder(
    upstream: MockRadius, out: Path, *extra: str
) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_radius", "record", "--listen", "127.0.0.1:0",
         "--upstream", f"127.0.0.1:{upstream.port}", "--secret", SECRET, "--out", str(out),
         "--upstream-timeout", "0.5", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    ready = wait_for_json_line(process.stdout, "port")
    return process, ("127.0.0.1", ready["port"])


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
    assert not out.with_name(out.name + ".partial").exists()
    text = out.read_text()
    assert text.startswith("# Recorded ") and "carol-pass" not in text  # hashed by default
    scenario = load_scenario(out)
    assert [s.name for s in scenario.steps] == ["carol-1", "carol-2", "paula-1", "tina-1"]
    assert scenario.steps[3].drop
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


def test_record_clients_without_message_authenticator_then_replay(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    upstream = mock_radius_factory(SCENARIOS, time_scale=0.1)
    out = tmp_path / "radclient.yaml"
    recorder, address = _recorder(upstream, out)
    live = _radclient_flow(address)
    recorder.send_signal(signal.SIGINT)
    _, stderr = recorder.communicate(timeout=10)
    assert recorder.returncode == 0, stderr
    assert [code for code, _, _ in live].count(None) == 1  # tina: no answer
    assert live[1] == ("Access-Accept", "Welcome", None)
    assert live[3] == ("Access-Reject", "Wrong code", None)
    assert live[8] == ("Access-Accept", "Welcome", None)  # olga's second right login
    scenario = load_scenario(out)
    assert scenario.require_message_authenticator is False  # as observed
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
    import socket

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
    original_state = rp.AuthPacket(packet=frames[1][3], secret=SECRET.encode())[24][0]
    assert first["State"] == [original_state]  # the State chain is the recorded one
    second = send(
        replay.address, build_request(SECRET, "carol", "123456", state=first["State"][0])
    ).reply()
    assert second is not None and second.code == rp.AccessAccept
    olga = send(replay.address, build_request(SECRET, "olga", "654321")).reply()
    assert olga is not None and olga.code == rp.AccessAccept


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
