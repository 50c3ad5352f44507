"""Server throughput and latency next to a bare-Starlette ceiling, in one run.

    python bench/bench_server.py [--seconds 3]

Starts `mfa-server` (SQLite store, a generated config with many users so every full login uses
a fresh user and a fresh TOTP code) and the ceiling app as separate processes on loopback, then
measures each operation at concurrency 1 and 32.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyotp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from httpload import Connection, Result, run

ACCEPT = {"Accept": "application/vnd.appgate.peer-v22+json"}
DEVICE = "4c07bc67-57ea-42dd-b702-c2d6c45419fc"
USERS = 6000


RADIUS_SCENARIO = """\
name: bench-challenge
secret: testing123
steps:
  - name: challenge
    match: {password: pw, state: absent}
    reply:
      code: Access-Challenge
      attributes: {Reply-Message: Enter the code, State: {generate: true}}
  - name: code
    match: {password: "123456", state: issued}
    reply: {code: Access-Accept}
"""


def _config(folder: Path, radius_port: int, storage: str = "sqlite:///./mfa.db") -> Path:
    users = [{"username": f"u{i}", "password": "pw"} for i in range(USERS)]
    config = {
        "server": {"hostname": "bench.local"},
        "storage": {"url": storage, "encryptionKeyFile": "./seed.key"},
        "identityProviders": [
            {"name": "local", "mfaProvider": "builtin", "users": users},
            {"name": "corp", "mfaProvider": "radius", "users": users},
        ],
        "mfaProviders": [
            {"name": "builtin", "type": "DefaultTimeBased"},
            {"name": "radius", "type": "Radius", "hostnames": ["127.0.0.1"],
             "port": radius_port, "sharedSecret": "testing123", "timeout": 5,
             "mode": "Challenge", "useUserPassword": True, "authenticationProtocol": "PAP"},
        ],
    }  # fmt: skip
    path = folder / ("bench-pg.yaml" if storage.startswith("postgres") else "bench.yaml")
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def _process(args: list[str], cwd: Path) -> Iterator[int]:
    process = subprocess.Popen(
        args,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)},
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("{") and '"port"' in line:
                yield int(json.loads(line)["port"])
                break
        else:
            raise RuntimeError(f"{args[0]} did not start")
    finally:
        process.terminate()
        process.wait(10)


async def _login(conn: Connection, user: str, provider: str = "local") -> str:
    status, data = await conn.request(
        "POST",
        "/admin/authentication",
        ACCEPT,
        {"providerName": provider, "username": user, "password": "pw", "deviceId": DEVICE},
    )
    assert status == 200, data
    return str(json.loads(data)["token"])


def _auth(token: str) -> dict[str, str]:
    return {**ACCEPT, "Authorization": f"Bearer {token}"}


async def bench(
    port: int, ceiling_port: int, seconds: float, label: str = "", totp_only: bool = False
) -> list[tuple[Result, Result]]:
    setup = await Connection.open("127.0.0.1", port)
    # an enrolled user for AlreadySeeded, an unverified one for Secret
    seeded = await _login(setup, "u0")
    _, data = await setup.request("POST", "/admin/authentication/otp/initialize", _auth(seeded))
    code = pyotp.TOTP(json.loads(data)["secret"]).now()
    status, _ = await setup.request(
        "POST", "/admin/authentication/otp", _auth(seeded), {"otp": code}
    )
    assert status == 200
    seeded = await _login(setup, "u0")
    unverified = await _login(setup, "u1")
    setup.close()
    next_user = iter(range(2, USERS))

    async def ceiling(conn: Connection) -> None:
        status, _ = await conn.request("GET", "/ceiling", ACCEPT)
        assert status == 200

    async def already_seeded(conn: Connection) -> None:
        status, data = await conn.request(
            "POST", "/admin/authentication/otp/initialize", _auth(seeded)
        )
        assert status == 200 and b"AlreadySeeded" in data

    async def secret(conn: Connection) -> None:
        status, data = await conn.request(
            "POST", "/admin/authentication/otp/initialize", _auth(unverified)
        )
        assert status == 200 and b"Secret" in data

    async def full_login(conn: Connection) -> None:
        token = await _login(conn, f"u{next(next_user)}")
        _, data = await conn.request("POST", "/admin/authentication/otp/initialize", _auth(token))
        otp = pyotp.TOTP(json.loads(data)["secret"]).now()
        status, data = await conn.request(
            "POST", "/admin/authentication/otp", _auth(token), {"otp": otp}
        )
        assert status == 200, data
        mfa = json.loads(data)["token"]
        status, _ = await conn.request("GET", "/admin/authorization", _auth(mfa))
        assert status == 200

    radius_user = iter(range(USERS))
    radius_token = await _login(await Connection.open("127.0.0.1", port), "u0", "corp")

    async def challenge_initialize(conn: Connection) -> None:
        status, data = await conn.request(
            "POST", "/admin/authentication/otp/initialize", _auth(radius_token),
            {"userPassword": "pw"},
        )  # fmt: skip
        assert status == 200 and b"Challenge" in data, data

    async def challenge_login(conn: Connection) -> None:
        token = await _login(conn, f"u{next(radius_user)}", "corp")
        _, data = await conn.request(
            "POST", "/admin/authentication/otp/initialize", _auth(token), {"userPassword": "pw"}
        )
        state = json.loads(data)["state"]
        status, data = await conn.request(
            "POST", "/admin/authentication/otp", _auth(token), {"otp": "123456", "state": state}
        )
        assert status == 200, data
        status, _ = await conn.request(
            "GET", "/admin/authorization", _auth(json.loads(data)["token"])
        )
        assert status == 200

    rows: list[tuple[Result, Result]] = []
    for concurrency in (1, 32):
        base = await run(
            "ceiling (bare Starlette)",
            "127.0.0.1",
            ceiling_port,
            ceiling,
            concurrency=concurrency,
            seconds=seconds,
        )
        rows.append((base, base))
        operations = [
            ("initialize AlreadySeeded", already_seeded, None),
            ("initialize Secret (QR JPEG)", secret, None),
            ("full login (4 requests, Secret)", full_login, (USERS - 2) // 2),
            ("RADIUS Challenge initialize", challenge_initialize, None),
            ("RADIUS Challenge full login", challenge_login, USERS // 2),
        ]
        if totp_only:
            operations = [operations[0], operations[2]]
        for name, op, limit in operations:
            result = await run(
                name + label,
                "127.0.0.1",
                port,
                op,
                concurrency=concurrency,
                seconds=seconds,
                max_ops=limit,
            )
            rows.append((result, base))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--postgres-url", help="also run AlreadySeeded and full login on this (empty) database"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scenario = Path(folder) / "bench-challenge.yaml"
        scenario.write_text(RADIUS_SCENARIO)
        mock = [
            sys.executable,
            "-m",
            "mock_radius",
            "serve",
            "--scenarios",
            str(scenario),
            "--port",
            "0",
        ]
        radius = _process(mock, Path(folder))
        radius_port = radius.__enter__()
        path = _config(Path(folder), radius_port)
        server = [
            sys.executable,
            "-m",
            "server",
            "--config",
            str(path),
            "--port",
            "0",
            "--log-level",
            "warning",
        ]
        ceiling = [
            sys.executable,
            "-c",
            "import json,uvicorn,socket;from ceiling import app;"
            "s=socket.socket(2,1,6);s.bind(('127.0.0.1',0));s.listen(1024);"
            "print(json.dumps({'port':s.getsockname()[1]}),flush=True);"
            "c=uvicorn.Config(app,log_level='warning',access_log=False);"
            "uvicorn.Server(c).run(sockets=[s])",
        ]
        with _process(server, Path(folder)) as port, _process(ceiling, Path(folder)) as cport:
            rows = asyncio.run(bench(port, cport, args.seconds))
            if args.postgres_url:
                pg_config = _config(Path(folder), radius_port, args.postgres_url)
                pg_server = [*server[:4], str(pg_config), *server[5:]]
                with _process(pg_server, Path(folder)) as pg_port:
                    rows += asyncio.run(
                        bench(pg_port, cport, args.seconds, " [PostgreSQL]", totp_only=True)
                    )
        radius.__exit__(None, None, None)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.seconds:.0f} s per row")
    for result, base in rows:
        ratio = result.rate / base.rate
        print(f"{result.row()}  {ratio:6.1%} of ceiling")


if __name__ == "__main__":
    main()
