"""CPU time per packet of the mock's packet path, in process: no sockets, no client.

    python bench/bench_radius_cpu.py [--rounds 6] [--mock-root DIR ...]

``bench_radius.py`` measures the mock against FreeRADIUS over loopback, where the system calls
and the client's share of the 2 cores dominate and the other processes of a shared machine
move the ratios by tens of percent. This measures only what a code change can move: the
Python of ``MockRadiusProtocol.handle`` (parse, Message-Authenticator, the step, the signed
reply, the journal entry) for a datagram already received, in process CPU time
(``time.process_time``: time the process spends descheduled does not count). Each
``--mock-root`` (default: this checkout) runs in a process of its own, the roots taking turns,
``--rounds`` times; the bench scenario and requests are bench_radius.py's.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACCEPTS, CHALLENGES = 50_000, 20_000


def _state_of(reply: bytes) -> bytes:
    offset = 20
    while offset + 2 <= len(reply):
        if reply[offset] == 24:
            return reply[offset + 2 : offset + reply[offset + 1]]
        offset += max(reply[offset + 1], 2)
    raise AssertionError("an Access-Challenge without a State")


class _Transport:
    socket = None

    def __init__(self) -> None:
        self.last = b""

    def write(self, datagram: bytes, address: Any) -> None:
        self.last = datagram


def _measure() -> tuple[float, float]:
    """In the child: microseconds of CPU per packet, immediate Accept and challenge round trip
    (both of its requests), best of three."""
    from bench_radius import SCENARIO, access_request  # beside this file, sys.path[0]
    from twisted.internet.task import Clock

    from mock_radius.engine import Engine
    from mock_radius.journal import Journal
    from mock_radius.protocol import MockRadiusProtocol, Notices
    from mock_radius.scenario import parse_scenario

    def protocol() -> tuple[MockRadiusProtocol, _Transport]:
        engine = Engine([parse_scenario(SCENARIO, "bench.yaml")], seed="bench")
        served = MockRadiusProtocol(engine, Journal(), Clock(), notices=Notices(io.StringIO()))
        transport = _Transport()
        served.transport = transport  # type: ignore[assignment]
        return served, transport

    address = ("127.0.0.1", 5000)

    def accepts() -> float:
        served, _ = protocol()
        requests = [access_request(n % 256, b"a%d" % n) for n in range(ACCEPTS)]
        started = time.process_time()
        for raw in requests:
            served.handle(raw, address)
        return (time.process_time() - started) / ACCEPTS

    def challenges() -> float:
        served, transport = protocol()
        spent = 0.0
        for n in range(CHALLENGES):
            first = access_request(n % 256, b"c%d" % n)
            started = time.process_time()
            served.handle(first, address)
            spent += time.process_time() - started
            second = access_request((n + 1) % 256, b"c%d" % n, _state_of(transport.last))
            started = time.process_time()
            served.handle(second, address)
            spent += time.process_time() - started
            assert transport.last[0] == 2, "the code was not accepted"
        return spent / (2 * CHALLENGES)

    return min(accepts() for _ in range(3)) * 1e6, min(challenges() for _ in range(3)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--mock-root", type=Path, action="append", dest="roots",
                        help="a checkout whose mock to measure; repeat for an A/B")  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        accept, challenge = _measure()
        print(f"{accept:.3f} {challenge:.3f}")
        return
    roots = args.roots or [ROOT]
    results: dict[Path, list[tuple[float, float]]] = {root: [] for root in roots}
    for _ in range(args.rounds):
        for root in roots:
            # the root's mock first on the path; the bench client and the rest from here
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(ROOT)])}
            output = subprocess.run([sys.executable, __file__, "--child"], env=env, cwd=ROOT,
                                    capture_output=True, text=True, check=True).stdout  # fmt: skip
            accept, challenge = map(float, output.split())
            results[root].append((accept, challenge))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]}, load average {load}, {args.rounds} rounds; CPU "
          "microseconds per packet, median [lowest-highest]")  # fmt: skip
    for root, rounds in results.items():
        cells = []
        for label, values in (("immediate Accept", [r[0] for r in rounds]),
                              ("challenge round trip", [r[1] for r in rounds])):  # fmt: skip
            cells.append(f"{label} {statistics.median(values):6.2f} "
                         f"[{min(values):.2f}-{max(values):.2f}]")  # fmt: skip
        print(f"{root}:  " + "   ".join(cells))


if __name__ == "__main__":
    main()
