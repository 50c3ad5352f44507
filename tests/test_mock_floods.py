"""Floods, bounded in count and time: the mock's memory stays bounded, it keeps answering.

The flood scenario is the costliest kind: every user gets an Access-Challenge with a State of
its own, so each request leaves a live exchange, a per-user State counter, a duplicate-cache
entry and a journal entry behind, all with the default limits (docs/mock-radius.md, "Bounds").
Memory is the resident set of the mock process, read from /proc/PID/status.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mock_radius.pytest_plugin import MockRadius
from tests.radius_client import build_request, send

USERS = 100_000
JUNK = 5_000
WINDOW = 200
# RSS growth allowed with the default limits: 16 MiB of journal, 50,000 exchanges and per-user
# counts, 32,768 duplicate-cache entries, and what the allocator keeps (measured: ~60 MB)
RSS_BOUND_MB = 100
SECRET = b"testing123"
PASSWORD = int.from_bytes(b"x".ljust(16, b"\0"), "big")
FLOOD = """\
name: flood
secret: testing123
steps:
  - name: challenge
    match: {state: absent}
    reply:
      code: Access-Challenge
      attributes: {Reply-Message: Enter the code, State: {generate: true}}
  - name: code
    match: {state: issued}
    reply: {code: Access-Accept}
"""
Factory = Callable[..., MockRadius]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def access_request(identifier: int, user: bytes) -> bytes:
    """Built by hand (RFC 2865, 3579), cheaply: a flood needs a hundred thousand."""
    authenticator = os.urandom(16)
    pad = hashlib.md5(SECRET + authenticator).digest()
    hidden = (int.from_bytes(pad, "big") ^ PASSWORD).to_bytes(16, "big")
    attributes = bytes((1, len(user) + 2)) + user + bytes((2, 18)) + hidden
    length = 20 + 18 + len(attributes)
    header = bytes((1, identifier)) + length.to_bytes(2, "big")
    zero_ma = bytes((80, 18)) + bytes(16)
    mac = hmac.digest(SECRET, header + authenticator + zero_ma + attributes, "md5")
    return header + authenticator + bytes((80, 18)) + mac + attributes


def flood(address: tuple[str, int], count: int, prefix: bytes) -> int:
    """``count`` requests of distinct users, ``WINDOW`` in flight; returns the answers."""
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        udp.connect(address)
        udp.settimeout(2.0)
        for start in range(0, count, WINDOW):
            batch = range(start, min(count, start + WINDOW))
            for n in batch:
                udp.send(access_request(n % 256, prefix + b"%d" % n))
            for _ in batch:
                try:
                    udp.recv(4096)
                except TimeoutError:
                    break
                answered += 1
    return answered


@pytest.mark.slow
def test_a_flood_of_users_and_junk_keeps_memory_bounded(
    mock_radius_factory: Factory, tmp_path: Path
) -> None:
    scenario = tmp_path / "flood.yaml"
    scenario.write_text(FLOOD)
    mock = mock_radius_factory(scenario)
    pid = mock.process.pid
    assert flood(mock.address, 2_000, b"warm-") >= 1_900  # imports, caches, allocator warm
    before = rss_mb(pid)
    started = time.monotonic()
    answered = flood(mock.address, USERS, b"user-")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for n in range(JUNK):
            udp.sendto(os.urandom(8192), mock.address)
            if n % 100 == 99:  # let the mock drain its socket buffer
                udp.sendto(access_request(0, b"pace"), mock.address)
                udp.settimeout(2.0)
                with contextlib.suppress(TimeoutError):
                    udp.recvfrom(4096)
    elapsed = time.monotonic() - started
    growth = rss_mb(pid) - before
    health = mock.control.health()
    assert answered >= USERS * 0.99, f"only {answered} of {USERS} answered in {elapsed:.0f} s"
    assert growth < RSS_BOUND_MB, f"RSS grew by {growth:.0f} MB"
    assert health["status"] == "ok" and health["errors"] == 0
    assert health["sessions"] <= 50_000 and health["runs"] <= 50_000
    assert health["duplicateCache"] <= 32_768
    assert health["journal"]["bytes"] <= health["journal"]["maxBytes"]
    junk = mock.control.journal_page(limit=1, since=health["journal"]["lastSeq"] - 1)["entries"]
    assert junk[0]["outcome"] in ("dropped-malformed", "matched")
    page = mock.control.journal_page(limit=10)
    assert len(page["entries"]) == 10 and page["more"] is True
    reply = send(mock.address, build_request("testing123", "after-the-flood", "x")).reply()
    assert reply is not None and reply["Reply-Message"] == ["Enter the code"]
    print(f"flood: {USERS} users + {JUNK} junk datagrams in {elapsed:.1f} s, RSS "
          f"{before:.0f} -> {before + growth:.0f} MB")  # fmt: skip
