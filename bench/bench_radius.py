"""Packets per second through the mock RADIUS server, as a ratio of FreeRADIUS's, in one run.

    python bench/bench_radius.py [--seconds 2] [--repeats 3] [--profile mock.folded]

Both servers run as processes on loopback: `mock-radius serve` with a bench scenario, and
`freeradius -f` with the minimal configuration in bench/freeradius/ (apt-get install
freeradius; without it the mock's rows print without ratios). Each row runs both servers
back to back, ``--repeats`` times, and prints the ranges over the repeats.

The client keeps ``window`` requests in flight, one per UDP socket (its own source port), so
no two requests in flight share a source port and identifier. Every request carries a fresh
Request Authenticator and its socket's next identifier (0-255, in turn): a server's duplicate
cache never answers it (a repeated identifier and authenticator would measure the cache, not
the server), and FreeRADIUS never sees a conflicting packet. Requests are built before the
clock starts, except the second request of a challenge round trip, which must carry the State
just received. Every request carries a Message-Authenticator; a challenge round trip counts two
packets.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mfa_shared.ready_line import read_json_line
from radius_codec.authenticators import sign_request
from radius_codec.codes import Attr, Code
from radius_codec.packet import encode_pairs, parse
from radius_codec.passwords import pap_hide

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_SECONDS = 20.0
SECRET = b"testing123"
SCENARIO = """\
name: bench
secret: testing123
steps:
  - name: accept
    times: always
    match: {userName: {regex: "a.*"}}
    reply: {code: Access-Accept}
  - name: challenge
    match: {userName: {regex: "c.*"}, state: absent}
    reply:
      code: Access-Challenge
      attributes: {Reply-Message: Enter the code, State: {generate: true}}
  - name: code
    match: {userName: {regex: "c.*"}, state: issued}
    reply: {code: Access-Accept}
"""
TIMEOUT = 2.0  # seconds a request may wait for its reply before it counts as lost
ROWS = [("immediate Accept", False, 1), ("immediate Accept", False, 32),
        ("challenge round trip", True, 1), ("challenge round trip", True, 32)]  # fmt: skip
GOALS = {("immediate Accept", 1): 0.80, ("immediate Accept", 32): 0.30}


def access_request(identifier: int, user: bytes, state: bytes | None = None) -> bytes:
    """An Access-Request with a fresh Request Authenticator, the password hidden (PAP) and a
    Message-Authenticator first, built with the project's codec."""
    authenticator = os.urandom(16)
    pairs = [(Attr.USER_NAME, user), (Attr.USER_PASSWORD, pap_hide(b"x", SECRET, authenticator))]
    if state is not None:
        pairs.append((Attr.STATE, state))
    return sign_request(identifier, authenticator, encode_pairs(pairs), SECRET)


def state_of(reply: bytes) -> bytes:
    state = parse(reply).state
    assert state is not None, "an Access-Challenge without a State"
    return state


class _Socket(asyncio.DatagramProtocol):
    """One worker's socket: one request in flight, matched by identifier."""

    def __init__(self) -> None:
        self.waiting: asyncio.Future[bytes] | None = None
        self.identifier = -1

    def datagram_received(self, data: bytes, addr: object) -> None:
        waiting = self.waiting
        if waiting is not None and not waiting.done() and data[1:2] == bytes((self.identifier,)):
            waiting.set_result(data)


@dataclass
class Result:
    packets_per_second: float
    latencies: list[float]
    lost: int = 0


async def _load(
    address: tuple[str, int], seconds: float, window: int, challenge: bool, budget: int
) -> Result:
    prefix = b"c" if challenge else b"a"
    per_worker = max(1, budget // window)
    prebuilt = [
        [access_request(n % 256, prefix + b"%d-%d" % (worker, n)) for n in range(per_worker)]
        for worker in range(window)
    ]
    loop = asyncio.get_running_loop()
    endpoints = [
        await loop.create_datagram_endpoint(_Socket, remote_addr=address) for _ in range(window)
    ]
    latencies: list[float] = []
    lost = 0
    deadline = time.perf_counter() + seconds

    async def exchange(client: _Socket, transport: asyncio.DatagramTransport, raw: bytes) -> bytes:
        client.identifier = raw[1]
        client.waiting = loop.create_future()
        transport.sendto(raw)
        return await asyncio.wait_for(client.waiting, TIMEOUT)

    async def worker(index: int) -> None:
        nonlocal lost
        transport, client = endpoints[index]
        identifier = per_worker
        for raw in prebuilt[index]:
            if time.perf_counter() >= deadline:
                return
            started = time.perf_counter()
            try:
                reply = await exchange(client, transport, raw)
                if challenge:
                    assert reply[0] == Code.ACCESS_CHALLENGE, f"expected a challenge: {reply[0]}"
                    user = parse(raw).user_raw
                    assert user is not None
                    identifier += 1
                    second = access_request(identifier % 256, user, state_of(reply))
                    reply = await exchange(client, transport, second)
            except TimeoutError:
                lost += 1
                continue
            assert reply[0] == Code.ACCESS_ACCEPT, f"expected an Access-Accept, got {reply[0]}"
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(window)))
    elapsed = time.perf_counter() - started
    for transport, _ in endpoints:
        transport.close()
    return Result(len(latencies) * (2 if challenge else 1) / elapsed, latencies, lost)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class _Drain(threading.Thread):
    """Reads a server's output so a full pipe never stalls it; keeps the last lines."""

    def __init__(self, stream: object) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: collections.deque[str] = collections.deque(maxlen=50)
        self.ready = threading.Event()

    def run(self) -> None:
        for line in self.stream:  # type: ignore[attr-defined]
            self.lines.append(line)
            if "Ready to process requests" in line:  # freeradius's
                self.ready.set()


@contextmanager
def _mock(folder: Path, profile: Path | None, root: Path = ROOT) -> Iterator[tuple[int, int]]:
    scenario = folder / "bench.yaml"
    scenario.write_text(SCENARIO)
    command = [sys.executable, "-m", "mock_radius", "serve", "--scenarios", str(scenario),
               "--port", "0"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(root)}
    probe = subprocess.run([*command[:4], "--help"], capture_output=True, text=True, env=env,
                           cwd=root)  # fmt: skip
    if "--acct-port" in probe.stdout:  # an older checkout (--mock-root) has no such option
        command += ["--acct-port", "none"]
    if profile is not None:
        command = ["py-spy", "record", "--format", "raw", "--rate", "250", "--nonblocking",
                   "-o", str(profile), "--", *command]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, cwd=root, env=env)  # fmt: skip
    try:
        assert process.stdout is not None
        # Any JSON line with a port: an older checkout (--mock-root) may name its event otherwise.
        ready = read_json_line(process.stdout, lambda line: "port" in line, READY_TIMEOUT_SECONDS)
        if ready is None:
            raise RuntimeError("mock-radius did not start")
        drain = _Drain(process.stdout)
        drain.start()
        pid = process.pid
        yield int(ready["port"]), pid
    finally:
        process.send_signal(2)  # SIGINT: py-spy writes its profile, the mock stops
        process.wait(30)


@contextmanager
def _freeradius(folder: Path, port: int) -> Iterator[int | None]:
    binary = shutil.which("freeradius") or shutil.which("radiusd")
    if binary is None:
        yield None
        return
    conf = (Path(__file__).parent / "freeradius" / "radiusd.conf").read_text()
    (folder / "radiusd.conf").write_text(
        conf.replace("@DIR@", str(folder)).replace("@PORT@", str(port))
    )
    process = subprocess.Popen(
        [binary, "-f", "-d", str(folder), "-l", "stdout"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    drain = _Drain(process.stdout)
    drain.start()
    try:
        if not drain.ready.wait(20):
            raise RuntimeError("freeradius did not start:\n" + "".join(drain.lines))
        yield port
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class Row:
    label: str
    window: int
    mock: list[Result] = field(default_factory=list)
    freeradius: list[Result] = field(default_factory=list)

    def ratios(self) -> list[float]:
        return [
            m.packets_per_second / f.packets_per_second
            for m, f in zip(self.mock, self.freeradius, strict=False)
            if f.packets_per_second
        ]


def _span(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return format(low, fmt) if len(values) == 1 else f"{low:{fmt}}-{high:{fmt}}"


def _top(profile: Path, count: int = 15) -> list[tuple[float, str]]:
    """Self time per function from py-spy's collapsed stacks (raw format)."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in profile.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        frames = stack.split(";")
        own[frames[-1]] += int(samples)
        total += int(samples)
    return [(100 * n / total, frame) for frame, n in own.most_common(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0, help="per row and server")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--freeradius-port", type=int, default=18120)
    parser.add_argument("--profile", type=Path, help="py-spy the mock into this file")
    parser.add_argument("--mock-root", type=Path, default=ROOT,
                        help="run the mock of another checkout (an A/B comparison)")  # fmt: skip
    args = parser.parse_args()
    rows = [Row(label, window) for label, _, window in ROWS]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with (
            _mock(folder, args.profile, args.mock_root) as (mock_port, _pid),
            _freeradius(folder, args.freeradius_port) as fr_port,
        ):
            for _ in range(args.repeats):
                for row, (_label, challenge, window) in zip(rows, ROWS, strict=True):
                    budget = int(args.seconds * (12_000 if challenge else 30_000))
                    for name, port in (("mock", mock_port), ("freeradius", fr_port)):
                        if port is None:
                            continue
                        result = asyncio.run(
                            _load(("127.0.0.1", port), args.seconds, window, challenge, budget)
                        )
                        (row.mock if name == "mock" else row.freeradius).append(result)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores (load average {load}), "
          f"{args.seconds:g} s per row and server, {args.repeats} repeats "
          "(ranges: lowest-highest)")  # fmt: skip
    print(f"{'':22} {'':9} {'packets/s':>13} {'p50 ms':>11} {'p99 ms':>11} {'lost':>5}  "
          "mock / FreeRADIUS")  # fmt: skip
    for row in rows:
        for name, results in (("mock", row.mock), ("freeradius", row.freeradius)):
            if not results:
                continue
            rate = _span([r.packets_per_second for r in results], ".0f")
            p50 = _span([_pct(r.latencies, 0.5) for r in results], ".2f")
            p99 = _span([_pct(r.latencies, 0.99) for r in results], ".2f")
            lost = sum(r.lost for r in results)
            ratio = ""
            if name == "mock" and row.ratios():
                ratios = row.ratios()
                goal = GOALS.get((row.label, row.window))
                ratio = f"{_span([100 * r for r in ratios], '.0f')} % " + (
                    f"(median {100 * statistics.median(ratios):.0f} %"
                    + (f", goal >= {100 * goal:.0f} %)" if goal else ")")
                )
            print(f"{row.label:<22} {name:<10} w={row.window:<3} {rate:>11} {p50:>11} {p99:>11} "
                  f"{lost:>5}  {ratio}")  # fmt: skip
    if args.profile is not None and args.profile.exists():
        print(f"\nmock-radius self time (py-spy, {args.profile}):")
        for share, frame in _top(args.profile):
            print(f"  {share:5.1f} %  {frame}")


if __name__ == "__main__":
    main()
