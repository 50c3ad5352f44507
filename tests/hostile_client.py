"""A hostile client, run as a process of its own by the edge tests (so that it competes with
the server for the CPU, not with the test for the GIL):

    python -m tests.hostile_client --port P --count 1000 --address 127.0.0.2 [--tls-ca FILE]

opens ``count`` connections from ``address`` (any 127/8 address is loopback on Linux), sends
half a request head on each and, whenever the server closes one (a 408 once its head is late,
or at once when it is over a limit), opens it again: the attack of issue 19 that starved every
other client. Prints ``{"event": "holding"}`` once every connection has been tried, and on
SIGTERM ``{"event": "stopped", "answered408", "refused", "connects"}`` before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import ssl

HALF_HEAD = b"GET /admin/identity-providers/names HTTP/1.1\r\nHost: x\r\nX-Slow: "


class Counts:
    def __init__(self, count: int) -> None:
        self.answered408 = 0
        self.refused = 0
        self.connects = 0
        self._untried = count
        self.all_tried = asyncio.Event()

    def tried(self) -> None:
        self._untried -= 1
        if self._untried == 0:
            self.all_tried.set()


async def _hold(args: argparse.Namespace, tls: ssl.SSLContext | None, counts: Counts) -> None:
    first = True
    while True:
        writer = None
        answer = b""
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", args.port, local_addr=(args.address, 0), ssl=tls,
                server_hostname="localhost" if tls else None,
            )  # fmt: skip
            counts.connects += 1
            writer.write(HALF_HEAD)
            if first:
                counts.tried()
                first = False
            answer = await reader.read(64)
        except (OSError, EOFError):  # reset, or refused during the TLS handshake
            pass
        finally:
            if writer is not None:
                writer.transport.abort()
        if first:
            counts.tried()
            first = False
        if answer.startswith(b"HTTP/1.1 408"):
            counts.answered408 += 1
        else:
            counts.refused += 1
        await asyncio.sleep(0)  # let the others run; no back-off, as an attacker would not


async def _main(args: argparse.Namespace) -> None:
    tls = None if args.tls_ca is None else ssl.create_default_context(cafile=args.tls_ca)
    counts = Counts(args.count)
    holders = [asyncio.create_task(_hold(args, tls, counts)) for _ in range(args.count)]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await counts.all_tried.wait()
    print(json.dumps({"event": "holding"}), flush=True)
    await stop.wait()
    for holder in holders:
        holder.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*holders, return_exceptions=True)
    found = {"answered408": counts.answered408, "refused": counts.refused,
             "connects": counts.connects}  # fmt: skip
    print(json.dumps({"event": "stopped", **found}), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--address", default="127.0.0.2")
    parser.add_argument("--tls-ca", help="trust this certificate and speak TLS")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
