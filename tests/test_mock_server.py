"""The mock as a process: duplicates, concurrency, faults in input, journal, control API, CLI."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyrad import packet as rp

from mock_radius.pytest_plugin import MockRadius
from mock_radius.scenario import load_scenario
from tests.conftest import wait_for_ready_line
from tests.radius_client import build_request, send

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
Factory = Callable[..., MockRadius]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow
def test_retransmission_while_pending_is_answered_once(mock_radius_factory: Factory) -> None:
    mock = mock_radius_factory(SCENARIOS / "push.yaml", time_scale=0.1)
    request = build_request("testing123", "paula", "push-secret")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(request.RequestPacket(), mock.address)
        exchange = send(mock.address, request, sock=udp, expect=2, timeout=1)
        # two copies sent during the delay, one reply (as FreeRADIUS: the retransmission is
        # discarded while the request is in progress)
        assert len(exchange.datagrams) == 1
        assert exchange.reply() is not None
        outcomes = [e["outcome"] for e in mock.control.journal()]
        assert outcomes == ["matched", "retransmission-pending"]
        # after the reply, a retransmission (same source port) is answered from the cache
        again = send(mock.address, request, sock=udp)
        assert again.datagrams == exchange.datagrams
    assert mock.control.journal()[-1]["outcome"] == "retransmission-answered-from-cache"


def test_retransmission_does_not_mint_a_new_state(mock_radius_factory: Factory) -> None:
    mock = mock_radius_factory(SCENARIOS / "challenge.yaml")
    request = build_request("testing123", "carol", "carol-pass")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        first = send(mock.address, request, sock=udp).reply()
        second = send(mock.address, request, sock=udp).reply()
    assert first is not None and second is not None
    assert first["State"] == second["State"]
    assert [e["outcome"] for e in mock.control.journal()] == [
        "matched",
        "retransmission-answered-from-cache",
    ]
    # a new request (new authenticator) of the same user continues the script
    code = send(
        mock.address, build_request("testing123", "carol", "123456", state=first["State"][0])
    )
    accepted = code.reply()
    assert accepted is not None and accepted.code == rp.AccessAccept


@pytest.mark.slow
def test_ignore_retransmissions_policy(tmp_path: Path, mock_radius_factory: Factory) -> None:
    path = _write(
        tmp_path,
        "slow.yaml",
        "name: slow\nsecret: s\nsteps:\n"
        "  - {delay: 0.3, onRetransmit: ignore, times: always, reply: {code: Access-Accept}}\n",
    )
    mock = mock_radius_factory(path)
    request = build_request("s", "u", "p")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(request.RequestPacket(), mock.address)
        exchange = send(mock.address, request, sock=udp, expect=2, timeout=1.0)
    assert len(exchange.datagrams) == 1


@pytest.mark.slow
def test_fifty_concurrent_users_each_see_their_script(
    tmp_path: Path, mock_radius_factory: Factory
) -> None:
    _write(
        tmp_path,
        "quick.yaml",
        "name: quick\nsecret: s\nsteps:\n"
        "  - {times: always, reply: {code: Access-Accept, attributes: {Reply-Message: quick}}}\n",
    )
    _write(
        tmp_path,
        "slow.yaml",
        "name: slow\nsecret: s\nsteps:\n  - delay: 1\n    times: always\n"
        "    reply: {code: Access-Reject, attributes: {Reply-Message: slow}}\n",
    )
    mock = mock_radius_factory(tmp_path, scenario="quick")
    users = [f"user{i}" for i in range(50)]
    for user in users[:25]:
        mock.control.activate("slow", user)
    results: dict[str, tuple[int, str, float]] = {}
    barrier = threading.Barrier(50)

    def run(user: str) -> None:
        barrier.wait()
        exchange = send(mock.address, build_request("s", user, "p"))
        reply = exchange.reply()
        assert reply is not None
        results[user] = (reply.code, reply["Reply-Message"][0], exchange.elapsed)

    threads = [threading.Thread(target=run, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert {results[user][:2] for user in users[:25]} == {(rp.AccessReject, "slow")}
    assert {results[user][:2] for user in users[25:]} == {(rp.AccessAccept, "quick")}
    slow = [results[user][2] for user in users[:25]]
    quick = [results[user][2] for user in users[25:]]
    # the scripted delay is honoured, and no quick answer waits for a slow one (both measured
    # in this run, not against a fixed budget)
    assert min(slow) >= 1.0
    assert max(quick) < min(slow)
    journal = mock.control.journal()
    assert len(journal) == 50
    assert {e["scenario"] for e in journal if e["user"] in users[:25]} == {"slow"}


def test_fifty_users_through_challenge_and_push_at_once(
    tmp_path: Path, mock_radius_factory: Factory
) -> None:
    challenge = (SCENARIOS / "challenge.yaml").read_text()
    challenge = challenge.replace("userName: carol, ", "").replace("users: [carol]\n", "")
    path = _write(tmp_path, "challenge-anyone.yaml", challenge)
    mock = mock_radius_factory(path, time_scale=1.0)
    results: dict[str, tuple[int, int]] = {}

    def run(user: str) -> None:
        first = send(mock.address, build_request("testing123", user, "carol-pass")).reply()
        assert first is not None
        state = first["State"][0]
        code = "123456" if user.endswith(("0", "2", "4", "6", "8")) else "999999"
        second = send(mock.address, build_request("testing123", user, code, state=state)).reply()
        assert second is not None
        results[user] = (first.code, second.code)

    users = [f"u{i}" for i in range(50)]
    threads = [threading.Thread(target=run, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    for user in users:
        expected = rp.AccessAccept if int(user[1:]) % 2 == 0 else rp.AccessReject
        assert results[user] == (rp.AccessChallenge, expected), user
    states = {
        e["reply"]["attributes"]["State"][0]
        for e in mock.control.journal()
        if e["step"] == "challenge"
    }
    assert len(states) == 50  # every user got a State of their own


@pytest.mark.slow
def test_one_delayed_reply_does_not_hold_up_others(mock_radius_factory: Factory) -> None:
    mock = mock_radius_factory(SCENARIOS, time_scale=1.0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as slow:
        started = time.monotonic()
        slow.sendto(
            build_request("testing123", "paula", "push-secret").RequestPacket(), mock.address
        )
        quick = send(mock.address, build_request("testing123", "rex", "x"))
        assert quick.reply() is not None
        slow.settimeout(5)
        data, _ = slow.recvfrom(4096)
        slow_elapsed = time.monotonic() - started
        assert data[0] == rp.AccessAccept
        assert quick.elapsed < slow_elapsed  # answered while the push was still pending


@pytest.mark.slow
def test_garbage_wrong_secret_and_bad_input_never_crash(mock_radius_factory: Factory) -> None:
    mock = mock_radius_factory(SCENARIOS)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for junk in [b"", b"\x01", b"\x01\x02\x00\x14" + bytes(16), os.urandom(300), b"\xff" * 30]:
            udp.sendto(junk, mock.address)
        accounting = build_request("testing123", "rex", "x")
        accounting.code = rp.AccountingRequest
        udp.sendto(accounting.RequestPacket(), mock.address)
    wrong_secret = send(mock.address, build_request("not-the-secret", "rex", "x"), timeout=0.5)
    assert wrong_secret.datagrams == []
    nobody = send(mock.address, build_request("testing123", "nobody-knows-me", "x"), timeout=0.5)
    assert nobody.datagrams == []
    still_alive = send(mock.address, build_request("testing123", "rex", "x")).reply()
    assert still_alive is not None
    outcomes = [e["outcome"] for e in mock.control.journal()]
    assert outcomes.count("dropped-malformed") >= 4
    assert "dropped-unsupported-code" in outcomes
    assert "dropped-bad-message-authenticator" in outcomes
    assert "dropped-no-scenario" in outcomes
    assert mock.control.health()["errors"] == 0


@pytest.mark.slow
def test_an_unknown_user_is_reported_once_on_stderr(mock_radius_factory: Factory) -> None:
    mock = mock_radius_factory(SCENARIOS)
    for _ in range(3):
        assert (
            send(mock.address, build_request("testing123", "nobody", "x"), timeout=0.3).datagrams
            == []
        )
    send(mock.address, build_request("testing123", "rex", "x"))  # answered: the notice is out
    mock.stop()
    notices = [json.loads(line) for line in mock.output() if "unknown-user" in line]
    assert [(n["event"], n["user"]) for n in notices] == [("unknown-user", "nobody")]


@pytest.mark.slow
def test_reading_a_large_journal_does_not_hold_up_replies(mock_radius_factory: Factory) -> None:
    import http.client

    mock = mock_radius_factory(SCENARIOS, extra_args=("--journal-bytes", "100000000"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        for n in range(100):  # 100 x 100 requests (what fits a socket buffer): 10,000 entries
            for m in range(100):
                udp.sendto(build_request("testing123", "rex", f"x{n}-{m}").RequestPacket(),
                           mock.address)  # fmt: skip
            for _ in range(100):
                udp.recvfrom(4096)
    assert mock.control.health()["journal"]["entries"] >= 10_000
    latencies: list[float] = []
    reading = threading.Event()

    def ask_meanwhile() -> None:  # RADIUS requests one after another while the page is read
        while not reading.is_set():
            exchange = send(mock.address, build_request("testing123", "olga", "654321"))
            assert exchange.reply() is not None
            latencies.append(exchange.elapsed)

    connection = http.client.HTTPConnection("127.0.0.1", mock.control_port, timeout=30)
    asker = threading.Thread(target=ask_meanwhile)
    started = time.monotonic()
    asker.start()
    connection.request("GET", "/journal?limit=10000")
    body = connection.getresponse().read()
    page_time = time.monotonic() - started
    reading.set()
    asker.join(10)
    connection.close()
    # the page is written a chunk per reactor turn: a reply waits for one chunk at most, not
    # for the page (compared with the page's own time, measured in the same run)
    assert len(latencies) >= 2 and max(latencies) < page_time / 4, (latencies, page_time)
    page = json.loads(body)
    assert len(page["entries"]) == 10_000 and page["more"] is True


def test_unknown_source_is_dropped(mock_radius_factory: Factory) -> None:
    mock = mock_radius_factory(SCENARIOS, extra_args=("--client", "192.0.2.0/24"))
    exchange = send(mock.address, build_request("testing123", "rex", "x"), timeout=0.5)
    assert exchange.datagrams == []
    assert mock.control.journal()[-1]["outcome"] == "dropped-unknown-source"


def test_proxy_state_is_copied_in_order(mock_radius_factory: Factory) -> None:
    mock = mock_radius_factory(SCENARIOS)
    request = build_request("testing123", "rex", "x", proxy_states=[b"first", b"second"])
    reply = send(mock.address, request).reply()
    assert reply is not None
    assert reply["Proxy-State"] == [b"first", b"second"]


def test_reply_has_message_authenticator_first(mock_radius_factory: Factory) -> None:
    mock = mock_radius_factory(SCENARIOS)
    raw = send(mock.address, build_request("testing123", "rex", "x")).datagrams[0]
    assert raw[20] == 80 and raw[21] == 18


def test_record_only_strictness(tmp_path: Path, mock_radius_factory: Factory) -> None:
    path = _write(
        tmp_path,
        "lenient.yaml",
        "name: lenient\nsecret: s\nrequireMessageAuthenticator: false\nsteps:\n"
        "  - {times: always, reply: {code: Access-Accept}}\n",
    )
    mock = mock_radius_factory(path)
    reply = send(mock.address, build_request("s", "u", "p", message_authenticator=False)).reply()
    assert reply is not None and reply.code == rp.AccessAccept
    send(mock.address, build_request("s", "u", "p"))
    assert [e["messageAuthenticator"] for e in mock.control.journal()] == ["absent", "valid"]


def test_mismatch_reply_can_be_scripted(tmp_path: Path, mock_radius_factory: Factory) -> None:
    path = _write(
        tmp_path,
        "strict.yaml",
        "name: strict\nsecret: s\n"
        "onMismatch: {code: Access-Challenge, attributes: {Reply-Message: try again}}\n"
        "steps:\n  - {match: {userName: only-me}, reply: {code: Access-Accept}}\n",
    )
    mock = mock_radius_factory(path)
    reply = send(mock.address, build_request("s", "someone-else", "p")).reply()
    assert reply is not None
    assert reply.code == rp.AccessChallenge and reply["Reply-Message"] == ["try again"]
    entry = mock.control.journal()[-1]
    assert entry["nearMiss"] == {"step": "step-1", "failed": ["userName"]}


def test_attribute_conditions(tmp_path: Path, mock_radius_factory: Factory) -> None:
    path = _write(
        tmp_path,
        "attrs.yaml",
        "name: attrs\nsecret: s\nsteps:\n"
        "  - match:\n      attributes:\n"
        "        NAS-Identifier: {regex: 'appgate-.*'}\n"
        "        NAS-Port: 7\n"
        "        Calling-Station-Id: {present: false}\n"
        "      messageAuthenticator: true\n"
        "    times: always\n    reply: {code: Access-Accept}\n",
    )
    mock = mock_radius_factory(path)
    good = build_request("s", "u", "p", extra={"NAS-Identifier": "appgate-ctl", "NAS-Port": 7})
    assert send(mock.address, good).reply().code == rp.AccessAccept  # type: ignore[union-attr]
    bad = build_request("s", "u", "p", extra={"NAS-Identifier": "other", "NAS-Port": 8})
    assert send(mock.address, bad).reply().code == rp.AccessReject  # type: ignore[union-attr]
    assert mock.control.journal()[-1]["nearMiss"]["failed"] == [
        "attribute NAS-Identifier",
        "attribute NAS-Port",
    ]


def test_control_api(mock_radius_factory: Factory) -> None:
    mock = mock_radius_factory(SCENARIOS)
    health = mock.control.health()
    assert health["status"] == "ok" and health["scenarios"] == 15
    listing = mock.control.scenarios()
    challenge = next(s for s in listing["scenarios"] if s["name"] == "challenge")
    assert challenge["steps"] == ["challenge", "right-code", "wrong-code"]
    assert challenge["users"] == ["carol"]
    # route one user to another scenario, then clear it
    mock.control.activate("reject", "olga")

    def code(user: str, password: str) -> int:
        reply = send(mock.address, build_request("testing123", user, password)).reply()
        assert reply is not None
        return int(reply.code)

    assert code("olga", "654321") == rp.AccessReject
    mock.control.activate(None, "olga")
    assert code("olga", "654321") == rp.AccessAccept
    # global activation covers users no scenario lists
    mock.control.activate("reject")
    assert code("zed", "x") == rp.AccessReject
    entries = mock.control.journal()
    assert mock.control.journal(since=entries[-1]["seq"]) == []
    assert [e["user"] for e in mock.control.journal(user="zed")] == ["zed"]
    mock.control.clear_journal()
    assert mock.control.journal() == []
    with pytest.raises(AssertionError, match="404"):
        mock.control.activate("no-such-scenario")
    with pytest.raises(AssertionError, match="400"):
        mock.control._call("POST", "/activate", {"scenario": 5})
    with pytest.raises(AssertionError, match="404"):
        mock.control._call("GET", "/nothing")


def test_time_scale_and_journal_file(tmp_path: Path, mock_radius_factory: Factory) -> None:
    """push.yaml delays its Accept 2 s; at time scale 0.05 that is 0.1 s: at least that long,
    and far under the scripted delay, judged against an immediate reply of the same run."""
    journal_file = tmp_path / "journal.jsonl"
    mock = mock_radius_factory(
        SCENARIOS, time_scale=0.05, extra_args=("--journal-file", str(journal_file))
    )
    scripted = load_scenario(SCENARIOS / "push.yaml").steps[0].delay
    immediate = send(mock.address, build_request("testing123", "rex", "rex-pass"))  # reject.yaml
    exchange = send(mock.address, build_request("testing123", "paula", "push-secret"))
    assert immediate.reply() is not None and exchange.reply() is not None
    assert 0.1 <= exchange.elapsed < immediate.elapsed + scripted / 2
    assert mock.stop() == 0
    lines = [json.loads(line) for line in journal_file.read_text().splitlines()]
    assert lines[1]["timeScale"] == 0.05 and lines[1]["delay"] == pytest.approx(0.1)
    assert lines[1]["attributes"]["User-Password"] == ["***"]
    assert "push-secret" not in journal_file.read_text()


@pytest.mark.slow
def test_sigterm_and_sigint_stop_cleanly(mock_radius_factory: Factory) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        mock = mock_radius_factory(SCENARIOS)
        mock.process.send_signal(sig)
        assert mock.process.wait(10) == 0


def _in_the_background(command: list[str]) -> tuple[subprocess.Popen[str], int, dict[str, Any]]:
    """``command &`` from a non-interactive shell: the child starts with SIGINT ignored."""
    shell = subprocess.Popen(
        ["sh", "-c", f"{shlex.join(command)} & echo pid=$!; wait $!"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert shell.stdout is not None
    pid = int(shell.stdout.readline().strip().removeprefix("pid="))
    ready = wait_for_ready_line(shell.stdout)
    return shell, pid, ready


@pytest.mark.slow
def test_sigint_stops_serve_and_record_started_in_the_background(tmp_path: Path) -> None:
    # what a shell hands down to a background job (shown on a process that keeps it)
    sleeper = subprocess.run(
        ["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True
    )
    sleeping = int(sleeper.stdout)
    try:
        assert signal.SIGINT in _signal_mask(sleeping, "SigIgn")
    finally:
        os.kill(sleeping, signal.SIGKILL)
    base = [sys.executable, "-m", "mock_radius"]
    serve, pid, ready = _in_the_background(
        [*base, "serve", "--scenarios", str(SCENARIOS), "--port", "0"]
    )
    try:
        assert signal.SIGINT in _signal_mask(pid, "SigCgt")  # the mock caught it back
        os.kill(pid, signal.SIGINT)
        assert serve.wait(10) == 0
    finally:
        if serve.poll() is None:
            os.kill(pid, signal.SIGKILL)
    out = tmp_path / "bg.yaml"
    record, pid, ready = _in_the_background(
        [*base, "record", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9",
         "--secret", "testing123", "--out", str(out), "--upstream-timeout", "0.2"]
    )  # fmt: skip
    send(("127.0.0.1", ready["port"]), build_request("testing123", "olga", "x"), timeout=0.5)
    os.kill(pid, signal.SIGINT)
    assert record.wait(10) == 0
    assert load_scenario(out).steps[0].drop  # it wrote what it saw


def _signal_mask(pid: int, field: str) -> set[int]:
    """Signals a process ignores (SigIgn) or catches (SigCgt), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            mask = int(line.split()[1], 16)
            return {n for n in range(1, 64) if mask & (1 << (n - 1))}
    return set()


def test_port_zero_announcement(mock_radius_factory: Factory) -> None:
    mock = mock_radius_factory(SCENARIOS)
    assert mock.host == "127.0.0.1" and mock.port > 0 and mock.control_port > 0
    other = mock_radius_factory(SCENARIOS)
    assert other.port != mock.port


@pytest.mark.mock_radius(scenarios=str(SCENARIOS / "reject.yaml"))
def test_plugin_marker_fixture(mock_radius: MockRadius) -> None:
    assert mock_radius.secret == "testing123"
    reply = send(mock_radius.address, build_request(mock_radius.secret, "anyone", "x")).reply()
    assert reply is not None and reply.code == rp.AccessReject


@pytest.mark.slow
def test_validate_command(tmp_path: Path) -> None:
    bad = _write(
        tmp_path,
        "bad.yaml",
        "name: bad\nsecret: s\nsteps:\n  - match: {userName: x, colour: red}\n"
        "    reply: {code: Access-Maybe}\n",
    )
    result = subprocess.run(
        [sys.executable, "-m", "mock_radius", "validate", str(bad), str(SCENARIOS / "push.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"{bad}:4: steps[0].match.colour: unknown key" in result.stderr
    assert f"{bad}:5: steps[0].reply.code: Input should be 'Access-Accept'" in result.stderr
    assert "push.yaml: ok (push, 1 step)" in result.stdout
    good = subprocess.run(
        [sys.executable, "-m", "mock_radius", "validate", str(SCENARIOS)],
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0 and good.stdout.count(": ok") == 15


def test_serve_refuses_bad_scenarios(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.yaml", "name: bad\nsteps: []\n")
    result = subprocess.run(
        [sys.executable, "-m", "mock_radius", "serve", "--scenarios", str(bad), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"{bad}:1: secret: Field required" in result.stderr
    assert f"{bad}:2: steps: List should have at least 1 item" in result.stderr


# a 0.5 KB "billion laughs": 9**8 (43 million) values once the aliases are expanded
BOMB = (
    "name: bomb\nsecret: s\nsteps: [{drop: true}]\n"
    "description: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))
)
MEMORY_CEILING = 2 << 30  # address space for the processes below: a regression fails, not swaps


def _measured(command: list[str], folder: Path) -> tuple[int, str, float, int]:
    """(exit status, stderr, seconds, peak resident KiB) of one process, from its own rusage."""
    import resource

    def ceiling() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CEILING, MEMORY_CEILING))

    err = folder / "stderr.txt"
    with err.open("w") as sink:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink,
                                   preexec_fn=ceiling)  # fmt: skip
        killer = threading.Timer(60, process.kill)  # a regression fails, it does not hang
        killer.start()
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.monotonic() - started
        killer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, err.read_text(), elapsed, usage.ru_maxrss


@pytest.mark.slow
def test_an_alias_bomb_is_refused_by_validate_and_serve_quickly(tmp_path: Path) -> None:
    """The loader the server uses (mfa_shared) refuses it before anything expands it: in about
    the time and the memory the same command takes with a small file."""
    bomb = _write(tmp_path, "bomb.yaml", BOMB)
    small = _write(tmp_path, "small.yaml", "name: small\nsteps: [{drop: true}]\n")  # no secret
    assert len(BOMB) < 600
    base = [sys.executable, "-m", "mock_radius"]
    refused = f"{bomb}:4: aliases expand to more than 100000 repeated values"
    for command, status in ((["validate"], 1), (["serve", "--port", "0", "--scenarios"], 2)):
        reference = _measured([*base, *command, str(small)], tmp_path)
        assert reference[0] == status and "secret: Field required" in reference[1]
        code, stderr, elapsed, peak = _measured([*base, *command, str(bomb)], tmp_path)
        assert (code, stderr.strip()) == (status, refused)
        # within a few times what the small file took, in time and memory (expanded, the bomb
        # takes minutes and gigabytes)
        assert elapsed < 3 * reference[2], (elapsed, reference[2])
        assert peak < reference[3] + 50 * 1024, (peak, reference[3])
