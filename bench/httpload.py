"""A small keep-alive HTTP/1.1 load generator on asyncio streams.

httpx costs about a millisecond of client CPU per request, which on a 2-core machine would
measure the client rather than the server; this client parses only the status line and
Content-Length. Every scenario is a coroutine that performs one "operation" (a request or a
whole login flow) on a connection; workers repeat it for a fixed time and record latencies.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader = reader
        self.writer = writer
        self.host = host

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if payload:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(payload)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
        data = await self.reader.readexactly(length) if length else b""
        return status, data

    def close(self) -> None:
        self.writer.close()


Operation = Callable[[Connection], Awaitable[None]]


@dataclass
class Result:
    name: str
    concurrency: int
    count: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def row(self) -> str:
        return (
            f"{self.name:<46} c={self.concurrency:<3} {self.rate:>9.0f}/s  "
            f"p50 {self.percentile(0.5):7.2f} ms  p99 {self.percentile(0.99):7.2f} ms"
        )


async def run(
    name: str,
    host: str,
    port: int,
    operation: Operation,
    *,
    concurrency: int,
    seconds: float,
    max_ops: int | None = None,
) -> Result:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    budget = [max_ops if max_ops is not None else 1 << 62]

    async def worker() -> None:
        connection = await Connection.open(host, port)
        try:
            while time.perf_counter() < deadline and budget[0] > 0:
                budget[0] -= 1
                started = time.perf_counter()
                await operation(connection)
                latencies.append(time.perf_counter() - started)
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Result(name, concurrency, len(latencies), elapsed, latencies)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
