"""Server throughput and latency as ratios against a bare-Starlette ceiling, in one run.

    python3 bench/bench_server.py [--seconds 3] [--repeats 3] [--postgres-url URL] [--big]

The ceiling is a Starlette route that returns a constant JSON, served by uvicorn with the same
loop and HTTP parser (uvloop, httptools) as the server. Single requests are driven by wrk (C, so
the load generator costs little of the 2 cores), at 1 and 32 connections; whole login flows by
bench/httpload.py. Every row runs --repeats times, each time right after the ceiling, and prints
the median ratio with its range. The server runs at its default log level (info: an access line
and an audit line per request).

Rows: AlreadySeeded initialize; Secret initialize for a new user each request; a RADIUS
Challenge initialize (mock RADIUS on loopback); full TOTP and Challenge logins; the same two
single requests with --workers 2 (the scaling against one worker); with --big, AlreadySeeded
and a full login with 1,000,000 seeds and 1,000,000 live tokens in the store against 1,000, and
AlreadySeeded while 1,000,000 expired tokens are purged.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import yaml

from mfa_shared.ready_line import read_ready_line

sys.path.insert(0, str(Path(__file__).resolve().parent))
from httpload import Connection, run

ROOT = Path(__file__).resolve().parent.parent
ACCEPT = "application/vnd.appgate.peer-v22+json"
DEVICE = "4c07bc67-57ea-42dd-b702-c2d6c45419fc"
INIT = "/admin/authentication/otp/initialize"
USERS = 40_000
READY_TIMEOUT_SECONDS = 60.0
RADIUS_SCENARIO = """\
name: bench-challenge
secret: testing123
steps:
  - name: challenge
    times: always
    match: {password: pw, state: absent}
    reply:
      code: Access-Challenge
      attributes: {Reply-Message: Enter the code, State: {generate: true}}
  - name: code
    times: always
    match: {password: "123456", state: issued}
    reply: {code: Access-Accept}
"""


@dataclass
class Measure:
    rate: float
    p50: float
    p99: float


# processes


@contextmanager
def process(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """A process that prints a JSON ready line holding "port"; stopped with SIGTERM."""
    child = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, env={**os.environ, **(env or {})})  # fmt: skip
    try:
        assert child.stdout is not None
        ready = read_ready_line(child.stdout, READY_TIMEOUT_SECONDS)
        if ready is None:
            raise RuntimeError(f"{' '.join(args[:4])} did not start")
        yield ready
    finally:
        child.terminate()
        child.wait(30)


def server_args(config: Path, workers: int = 1) -> list[str]:
    return [sys.executable, "-m", "appgate_mfa_server", "--config", str(config), "--port", "0",
            "--workers", str(workers)]  # fmt: skip


CEILING = [
    sys.executable, "-c",
    "import uvicorn,socket;from ceiling import app;from mfa_shared.ready_line import ready_line;"
    "s=socket.socket(2,1,6);s.bind(('127.0.0.1',0));s.listen(2048);"
    "print(ready_line(port=s.getsockname()[1]),flush=True);"
    "uvicorn.Server(uvicorn.Config(app,log_level='warning',access_log=False)).run(sockets=[s])",
]  # fmt: skip


def write_config(folder: Path, radius_port: int, storage: str, users: int = USERS) -> Path:
    names = [{"username": f"u{i}", "password": "pw"} for i in range(users)]
    config = {
        "server": {"hostname": "bench.local", "maxConnections": 4000},
        "storage": {"url": storage, "encryptionKeyFile": "./seed.key", "purgeInterval": "2s"},
        "identityProviders": [
            {"name": "local", "mfaProvider": "builtin", "users": names},
            {"name": "corp", "mfaProvider": "radius", "users": names},
        ],
        "mfaProviders": [
            {"name": "builtin", "type": "DefaultTimeBased"},
            {"name": "radius", "type": "Radius", "hostnames": ["127.0.0.1"],
             "port": radius_port, "sharedSecret": "testing123", "timeout": 5,
             "mode": "Challenge", "useUserPassword": True, "authenticationProtocol": "PAP"},
        ],
    }  # fmt: skip
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# load generators


def wrk(
    port: int,
    path: str,
    connections: int,
    seconds: float,
    *,
    method: str = "POST",
    token: str | None = None,
    body: str | None = None,
) -> Measure:
    """One wrk run of one fixed request."""
    headers = [f'["Accept"] = "{ACCEPT}"']
    if token:
        headers.append(f'["Authorization"] = "Bearer {token}"')
    if body is not None:
        headers.append('["Content-Type"] = "application/json"')
    script = [
        f"wrk.method = '{method}'",
        f"wrk.path = '{path}'",
        f"wrk.headers = {{{', '.join(headers)}}}",
    ]
    if body is not None:
        script.append(f"wrk.body = '{body}'")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write("\n".join(script) + "\n")
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", lua.name,
             f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(lua.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors on {path}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Measure(rate, _latency(out, "50%"), _latency(out, "99%"))


def _latency(out: str, label: str) -> float:
    found = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
    if found is None:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
    return float(found.group(1)) * scale


async def login_tokens(port: int, provider: str, users: Iterator[int], count: int) -> list[str]:
    tokens: list[str] = []

    async def worker() -> None:
        conn = await Connection.open("127.0.0.1", port)
        while len(tokens) < count:
            status, data = await conn.request(
                "POST", "/admin/authentication", {"Accept": ACCEPT},
                {"providerName": provider, "username": f"u{next(users)}", "password": "pw",
                 "deviceId": DEVICE},
            )  # fmt: skip
            assert status == 200, data
            tokens.append(json.loads(data)["token"])
        conn.close()

    await asyncio.gather(*(worker() for _ in range(16)))
    return tokens


def _auth(token: str) -> dict[str, str]:
    return {"Accept": ACCEPT, "Authorization": f"Bearer {token}"}


async def full_login(port: int, users: Iterator[int], concurrency: int, seconds: float,
                     provider: str = "local") -> Measure:  # fmt: skip
    async def totp(conn: Connection) -> None:
        user = f"u{next(users)}"
        body = {"providerName": provider, "username": user, "password": "pw", "deviceId": DEVICE}
        _, data = await conn.request("POST", "/admin/authentication", {"Accept": ACCEPT}, body)
        token = json.loads(data)["token"]
        if provider == "local":
            _, data = await conn.request("POST", INIT, _auth(token))
            answer = {"otp": pyotp.TOTP(json.loads(data)["secret"]).now()}
        else:
            _, data = await conn.request("POST", INIT, _auth(token), {"userPassword": "pw"})
            answer = {"otp": "123456"}  # the state is the one kept with the token
        status, data = await conn.request("POST", "/admin/authentication/otp", _auth(token), answer)
        assert status == 200, data
        status, _ = await conn.request(
            "GET", "/admin/authorization", _auth(json.loads(data)["token"])
        )
        assert status == 200

    result = await run("login", "127.0.0.1", port, totp, concurrency=concurrency, seconds=seconds)
    return Measure(result.rate, result.percentile(0.5), result.percentile(0.99))


async def enrolled_token(port: int, user: int) -> str:
    conn = await Connection.open("127.0.0.1", port)
    body = {"providerName": "local", "username": f"u{user}", "password": "pw", "deviceId": DEVICE}
    _, data = await conn.request("POST", "/admin/authentication", {"Accept": ACCEPT}, body)
    token = json.loads(data)["token"]
    _, data = await conn.request("POST", INIT, _auth(token))
    code = pyotp.TOTP(json.loads(data)["secret"]).now()
    status, _ = await conn.request("POST", "/admin/authentication/otp", _auth(token), {"otp": code})
    assert status == 200
    _, data = await conn.request("POST", "/admin/authentication", {"Accept": ACCEPT}, body)
    conn.close()
    return str(json.loads(data)["token"])


# reporting


@dataclass
class Row:
    name: str
    measures: list[Measure]
    against: list[float]  # the reference rate of each repeat (the ceiling, or another row)
    reference: str = "ceiling"

    def line(self) -> str:
        ratios = [m.rate / a for m, a in zip(self.measures, self.against, strict=True)]
        rate = statistics.median(m.rate for m in self.measures)
        p50 = statistics.median(m.p50 for m in self.measures)
        p99 = statistics.median(m.p99 for m in self.measures)
        spread = f"[{min(ratios):.2f}-{max(ratios):.2f}]"
        return (f"{self.name:<52} {rate:8.0f}/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
                f"{statistics.median(ratios):5.2f}x {spread:<12} of {self.reference}")  # fmt: skip


def repeat(times: int, ceiling: Callable[[], Measure], row: Callable[[], Measure],
           name: str) -> tuple[Row, Row]:  # fmt: skip
    """The row and the ceiling, alternately, ``times`` times."""
    bases: list[Measure] = []
    measures: list[Measure] = []
    for _ in range(times):
        bases.append(ceiling())
        measures.append(row())
    base_rates = [b.rate for b in bases]
    return Row(name, measures, base_rates), Row("  ceiling right before it", bases, base_rates)


# the big store


def fill_big_store(db_file: Path, count: int) -> None:
    """``count`` verified seeds and live tokens of sessions, and ``count`` expired tokens."""
    db = sqlite3.connect(db_file)
    now = time.time()
    blob = secrets.token_bytes(60)
    with db:
        db.executemany(
            "INSERT INTO seeds VALUES (?, 'big', ?, ?, 1, 1, ?)",
            ((f"CN=b{i},OU=big", f"b{i}", blob, now) for i in range(count)),
        )
        db.executemany(
            "INSERT INTO sessions VALUES (?, 'big', ?, ?, 0)",
            ((f"s{i}", f"b{i}", now + 86400) for i in range(count)),
        )
        db.executemany(
            "INSERT INTO tokens VALUES (?, ?, 'big', ?, 'full', ?, 0, NULL)",
            ((secrets.token_hex(32), f"s{i}", f"b{i}", now + 86400) for i in range(count)),
        )
        db.executemany(
            "INSERT INTO sessions VALUES (?, 'big', ?, ?, 0)",
            ((f"x{i}", f"b{i}", now - 10) for i in range(count)),
        )
        db.executemany(
            "INSERT INTO tokens VALUES (?, ?, 'big', ?, 'full', ?, 0, NULL)",
            ((secrets.token_hex(32), f"x{i}", f"b{i}", now - 10) for i in range(count)),
        )
    db.close()


def fill_big_store_pg(url: str, count: int) -> None:
    """The same rows as ``fill_big_store``, with COPY."""
    import psycopg

    now = time.time()
    blob = secrets.token_bytes(60)
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy("COPY seeds FROM STDIN") as copy:
            for i in range(count):
                copy.write_row((f"CN=b{i},OU=big", "big", f"b{i}", blob, True, 1, now))
        with cursor.copy("COPY sessions FROM STDIN") as copy:
            for i in range(count):
                copy.write_row((f"s{i}", "big", f"b{i}", now + 86400, False))
                copy.write_row((f"x{i}", "big", f"b{i}", now - 10, False))
        with cursor.copy("COPY tokens FROM STDIN") as copy:
            for i in range(count):
                copy.write_row((secrets.token_hex(32), f"s{i}", "big", f"b{i}", "full",
                                now + 86400, False, None))  # fmt: skip
                copy.write_row((secrets.token_hex(32), f"x{i}", "big", f"b{i}", "full",
                                now - 10, False, None))  # fmt: skip
        conn.commit()


def fresh_database(server_url: str, name: str) -> str:
    """An empty database ``name`` on the server of ``server_url`` (dropped first if there)."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--postgres-url", help="also run the PostgreSQL rows on this empty database"
    )
    parser.add_argument("--big", action="store_true", help="the 1,000,000-row store rows")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_server: needs wrk (apt-get install wrk)")
    seconds, times = args.seconds, args.repeats
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "bench-challenge.yaml").write_text(RADIUS_SCENARIO)
        mock_args = [sys.executable, "-m", "mock_radius", "serve", "--scenarios",
                     str(folder / "bench-challenge.yaml"), "--port", "0"]  # fmt: skip
        bench_dir = Path(__file__).resolve().parent
        with (
            process(mock_args, folder) as mock,
            process(CEILING, bench_dir) as ceiling_ready,
        ):
            cport = ceiling_ready["port"]

            def ceiling(connections: int) -> Callable[[], Measure]:
                return lambda: wrk(cport, "/ceiling", connections, seconds, method="GET")

            one = folder / "one"
            one.mkdir()
            config = write_config(one, mock["port"], "sqlite:///./mfa.db")
            with process(server_args(config), one) as server:
                rows += single_process_rows(server["port"], ceiling, seconds, times, "")
            two = folder / "two"
            two.mkdir()
            config = write_config(two, mock["port"], "sqlite:///./mfa.db")
            with process(server_args(config, workers=2), two) as server:
                rows += workers_rows(server["port"], rows, seconds, times)
            if args.postgres_url:
                pg = folder / "pg"
                pg.mkdir()
                url = fresh_database(args.postgres_url, "mfa_bench")
                config = write_config(pg, mock["port"], url)
                with process(server_args(config), pg) as server:
                    rows += single_process_rows(server["port"], ceiling, seconds, times,
                                                " [PostgreSQL]", totp_only=True)  # fmt: skip
            if args.big:
                rows += big_store_rows(folder, mock["port"], seconds, times, None)
                if args.postgres_url:
                    rows += big_store_rows(folder, mock["port"], seconds, times,
                                           args.postgres_url)  # fmt: skip
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {seconds:g} s a run, "
          f"{times} runs a row; median ratio [range]")  # fmt: skip
    for row in rows:
        print(row.line())


def single_process_rows(port: int, ceiling: Callable[[int], Callable[[], Measure]],
                        seconds: float, times: int, label: str,
                        totp_only: bool = False) -> list[Row]:  # fmt: skip
    rows: list[Row] = []
    seeded = asyncio.run(enrolled_token(port, 0))
    users = iter(range(1, USERS))
    for connections in (1, 32):
        rows += repeat(times, ceiling(connections),
                       lambda c=connections: wrk(port, INIT, c, seconds, token=seeded),  # type: ignore[misc]
                       f"AlreadySeeded initialize, c={connections}{label}")  # fmt: skip
    tokens = iter(asyncio.run(login_tokens(port, "local", users, int(1500 * seconds * times))))
    rows += repeat(times, ceiling(32),
                   lambda: asyncio.run(initialize_fresh(port, tokens, 32, seconds)),
                   f"Secret initialize, a new user each request, c=32{label}")  # fmt: skip
    rows += repeat(times, ceiling(32),
                   lambda: asyncio.run(full_login(port, users, 32, seconds)),
                   f"full TOTP login (4 requests), c=32{label}")  # fmt: skip
    if not totp_only:
        # Partial tokens for the RADIUS users, several to a user when the rows run long.
        corp = iter(asyncio.run(login_tokens(port, "corp", itertools.cycle(range(USERS)),
                                             int(4000 * seconds * times))))  # fmt: skip
        rows += repeat(times, ceiling(32),
                       lambda: asyncio.run(initialize_fresh(port, corp, 32, seconds, b"Challenge",
                                                            {"userPassword": "pw"})),
                       "RADIUS Challenge initialize, a fresh token each, c=32")  # fmt: skip
        rows += repeat(times, ceiling(32),
                       lambda: asyncio.run(full_login(port, iter(range(USERS)), 32, seconds,
                                                      provider="corp")),
                       "full RADIUS Challenge login (4 requests), c=32")  # fmt: skip
    return rows


async def initialize_fresh(port: int, tokens: Iterator[str], concurrency: int, seconds: float,
                           answer: bytes = b"Secret", body: object = None) -> Measure:  # fmt: skip
    """Initialize, each with a fresh partial token (a Secret for a new user; a RADIUS
    Challenge's first round: the server counts every further initialize on one token as a
    round, so one token cannot be asked again and again). Driven by httpload, not wrk: wrk's
    latency for the 40 KB answers of old showed a p99 ten times the server's own (its access
    lines said 2.5 ms at p99), so its figure measured wrk."""

    async def initialize(conn: Connection) -> None:
        status, data = await conn.request("POST", INIT, _auth(next(tokens)), body)
        assert status == 200 and answer in data, data

    result = await run("initialize", "127.0.0.1", port, initialize, concurrency=concurrency,
                       seconds=seconds)  # fmt: skip
    return Measure(result.rate, result.percentile(0.5), result.percentile(0.99))


def workers_rows(port: int, one_worker: list[Row], seconds: float, times: int) -> list[Row]:
    """The same single requests on two workers, against the one-worker figures."""
    seeded = asyncio.run(enrolled_token(port, 0))
    by_name = {row.name: row for row in one_worker}
    reference_seeded = statistics.median(
        m.rate for m in by_name["AlreadySeeded initialize, c=32"].measures
    )
    seeded_runs = [wrk(port, INIT, 64, seconds, token=seeded) for _ in range(times)]
    tokens = iter(asyncio.run(login_tokens(port, "local", iter(range(1, USERS)),
                                           int(1800 * seconds * times))))  # fmt: skip
    reference_secret = statistics.median(
        m.rate for m in by_name["Secret initialize, a new user each request, c=32"].measures
    )
    secret_runs = [asyncio.run(initialize_fresh(port, tokens, 64, seconds))
                   for _ in range(times)]  # fmt: skip
    return [
        Row("AlreadySeeded initialize, --workers 2, c=64", seeded_runs,
            [reference_seeded] * times, "one worker"),
        Row("Secret initialize, --workers 2, c=64", secret_runs,
            [reference_secret] * times, "one worker"),
    ]  # fmt: skip


def big_store_rows(folder: Path, radius_port: int, seconds: float, times: int,
                   postgres: str | None) -> list[Row]:  # fmt: skip
    """AlreadySeeded and a full login with 1,000 rows, then with 1,000,000 seeds and live
    tokens (and as many expired tokens, purged every 2 s while it runs)."""
    label = " [PostgreSQL]" if postgres else ""
    measured: dict[str, list[Measure]] = {}
    for size in (1_000, 1_000_000):
        store = folder / f"big{size}{label.strip(' []').lower()}"
        store.mkdir()
        url = (fresh_database(postgres, f"mfa_big{size}") if postgres
               else "sqlite:///./mfa.db")  # fmt: skip
        config = write_config(store, radius_port, url, users=5000)
        with process(server_args(config), store):
            pass  # made the schema
        if postgres:
            fill_big_store_pg(url, size)
        else:
            fill_big_store(store / "mfa.db", size)
        with process(server_args(config), store) as server:
            port = server["port"]
            seeded = asyncio.run(enrolled_token(port, 0))
            measured.setdefault("seeded", []).extend(
                wrk(port, INIT, 32, seconds, token=seeded) for _ in range(times)
            )
            users = iter(range(1, 5000))
            measured.setdefault("login", []).extend(
                asyncio.run(full_login(port, users, 8, seconds)) for _ in range(times)
            )
    small_seeded = statistics.median(m.rate for m in measured["seeded"][:times])
    small_login = statistics.median(m.rate for m in measured["login"][:times])
    return [
        Row(f"AlreadySeeded, 1M seeds + 1M live tokens (+1M purged), c=32{label}",
            measured["seeded"][times:], [small_seeded] * times, "1,000 rows"),
        Row(f"full TOTP login, 1M seeds + 1M live tokens, c=8{label}",
            measured["login"][times:], [small_login] * times, "1,000 rows"),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
