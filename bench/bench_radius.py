"""Packets per second through the mock RADIUS server, next to FreeRADIUS, in one run.

    python bench/bench_radius.py [--seconds 3]

Both servers run as processes on loopback: `mock-radius serve` with a bench scenario, and
`freeradius -f` with the minimal configuration in bench/freeradius/ (apt-get install
freeradius). The client keeps a window of requests in flight over one UDP socket; requests are
built ahead of time (unique authenticators, so neither server takes them for retransmissions),
except the second request of a challenge round trip, which must carry the State just received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyrad import packet as rp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from mock_radius.scenario import dictionary  # noqa: E402

SECRET = "testing123"
SCENARIO = """\
name: bench
secret: testing123
steps:
  - name: challenge
    match: {userName: {regex: "c.*"}, state: absent}
    reply:
      code: Access-Challenge
      attributes: {Reply-Message: Enter the code, State: {generate: true}}
  - name: code
    match: {userName: {regex: "c.*"}, state: issued}
    reply: {code: Access-Accept}
  - name: accept
    times: always
    match: {userName: {regex: "a.*"}}
    reply: {code: Access-Accept}
"""


def _request(user: str, state: bytes | None = None) -> rp.AuthPacket:
    packet = rp.AuthPacket(code=rp.AccessRequest, secret=SECRET.encode(), dict=dictionary())
    packet.authenticator = packet.CreateAuthenticator()
    packet["User-Name"] = user
    packet["User-Password"] = packet.PwCrypt("x")
    if state is not None:
        packet["State"] = state
    packet.add_message_authenticator()
    return packet


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[bytes]] = {}  # by identifier

    def datagram_received(self, data: bytes, addr: object) -> None:
        future = self.waiting.pop(data[1], None) if len(data) >= 20 else None
        if future is not None and not future.done():
            future.set_result(data)


def _prebuilt(window: int, count: int, prefix: str) -> list[list[bytes]]:
    """Raw requests per worker, each worker owning one identifier, built before the clock runs."""
    per_worker = max(1, count // window)
    out: list[list[bytes]] = []
    for worker in range(window):
        packets = []
        for n in range(per_worker):
            packet = _request(f"{prefix}{worker}-{n}")
            packet.id = worker
            packets.append(packet.RequestPacket())
        out.append(packets)
    return out


async def _load(
    address: tuple[str, int], seconds: float, window: int, challenge: bool, budget: int
) -> tuple[int, list[float]]:
    prebuilt = _prebuilt(window, budget, "c" if challenge else "a")
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(_Client, remote_addr=address)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def exchange(identifier: int, raw: bytes) -> bytes:
        future = loop.create_future()
        client.waiting[identifier] = future
        transport.sendto(raw)
        try:
            return await asyncio.wait_for(future, 2)
        finally:
            client.waiting.pop(identifier, None)

    async def worker(index: int) -> None:
        for raw in prebuilt[index]:
            if time.perf_counter() >= deadline:
                return
            started = time.perf_counter()
            reply = await exchange(index, raw)
            if challenge:
                assert reply[0] == rp.AccessChallenge, reply[0]
                decoded = rp.AuthPacket(packet=reply, dict=dictionary())
                user = rp.AuthPacket(packet=raw, dict=dictionary())["User-Name"][0]
                second = _request(user, decoded["State"][0])
                second.id = index
                reply = await exchange(index, second.RequestPacket())
            assert reply[0] == rp.AccessAccept, reply[0]
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(window)))
    elapsed = time.perf_counter() - started
    transport.close()
    return int(len(latencies) * (2 if challenge else 1) / elapsed), latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@contextmanager
def _mock(folder: Path) -> Iterator[int]:
    scenario = folder / "bench.yaml"
    scenario.write_text(SCENARIO)
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_radius", "serve", "--scenarios", str(scenario),
         "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        yield int(json.loads(process.stdout.readline())["port"])
    finally:
        process.terminate()
        process.wait(10)


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
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "Ready to process requests" in line:
                break
        yield port
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--freeradius-port", type=int, default=18120)
    args = parser.parse_args()
    rows: list[tuple[str, str, int, int, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with _mock(folder) as mock_port, _freeradius(folder, args.freeradius_port) as fr_port:
            for label, challenge in [("immediate Accept", False), ("challenge round trip", True)]:
                for window in (1, 32):
                    for server, port in [("mock-radius", mock_port), ("freeradius", fr_port)]:
                        if port is None:
                            continue
                        budget = int(args.seconds * (8000 if challenge else 25000))
                        rate, lat = asyncio.run(
                            _load(("127.0.0.1", port), args.seconds, window, challenge, budget)
                        )
                        rows.append((label, server, window, rate, lat))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.seconds:.0f} s per row")
    anchors = {(r[0], r[2]): r[3] for r in rows if r[1] == "freeradius"}
    for label, server, window, rate, lat in rows:
        anchor = anchors.get((label, window))
        ratio = f"{rate / anchor:6.1%} of FreeRADIUS" if anchor else ""
        print(
            f"{label:<22} {server:<12} window={window:<3} {rate:>7} packets/s  "
            f"p50 {_pct(lat, 0.5):6.2f} ms  p99 {_pct(lat, 0.99):6.2f} ms  {ratio}"
        )


if __name__ == "__main__":
    main()
