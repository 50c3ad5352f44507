"""Where the cores go when the server runs on one worker and on two.

    python3 bench/bench_workers.py [--seconds 5] [--rounds 3]

bench_server.py's `--workers 2` row compares requests/s on two workers with one; on a 2-core
machine the load generator (wrk) runs on the same cores, so that ratio is bounded by what wrk
leaves free. This bench measures it: AlreadySeeded initialize at c=32 on one worker and c=64 on
two, taking turns, each with the CPU time the server's workers and wrk spent (/proc/PID/stat
of the ready line's pids; the children's rusage), so requests/s per core of server CPU can be
compared too. Two workers that scale perfectly keep the requests/s per server core that one
worker had.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_server import INIT, enrolled_token, process, server_args, write_config, wrk

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the server's workers (the ready line's pids; a supervisor, with
    two workers, only waits on them)."""
    total = 0.0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # ended meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Run:
    rate: float
    server_cores: float
    wrk_cores: float

    @property
    def per_server_core(self) -> float:
        return self.rate / self.server_cores


def one_run(folder: Path, workers: int, seconds: float) -> Run:
    config = write_config(folder, 1812, "sqlite:///./mfa.db", users=100)
    with process(server_args(config, workers=workers), folder) as ready:
        port = int(ready["port"])
        token = asyncio.run(enrolled_token(port, 0))
        pids = [int(pid) for pid in ready["pids"]]
        server_before, wrk_before, started = (
            cpu_seconds(pids),
            children_cpu_seconds(),
            time.monotonic(),
        )
        measure = wrk(port, INIT, 32 * workers, seconds, token=token)
        wall = time.monotonic() - started
        server = (cpu_seconds(pids) - server_before) / wall
        load = (children_cpu_seconds() - wrk_before) / wall
    return Run(measure.rate, server, load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="one and two workers each (3)")
    args = parser.parse_args()
    runs: dict[int, list[Run]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):
            for workers in (1, 2):
                folder = Path(tmp) / f"{workers}-{index}"
                folder.mkdir()
                runs[workers].append(one_run(folder, workers, args.seconds))
    print(f"{os.cpu_count()} cores, AlreadySeeded initialize, {args.seconds:g} s a run, "
          f"{args.rounds} rounds; medians")  # fmt: skip
    for workers, measured in runs.items():
        rate = statistics.median(r.rate for r in measured)
        server = statistics.median(r.server_cores for r in measured)
        load = statistics.median(r.wrk_cores for r in measured)
        per_core = statistics.median(r.per_server_core for r in measured)
        print(f"workers {workers}, c={32 * workers:<3} {rate:8.0f}/s   server {server:.2f} cores"
              f"   wrk {load:.2f} cores   {per_core:6.0f}/s per server core")  # fmt: skip
    one, two = (statistics.median(r.rate for r in runs[n]) for n in (1, 2))
    per_one, per_two = (statistics.median(r.per_server_core for r in runs[n]) for n in (1, 2))
    print(f"two workers / one: {two / one:.2f}x requests/s, "
          f"{per_two / per_one:.2f}x per server core")  # fmt: skip


if __name__ == "__main__":
    main()
