"""mfa-server: run the reference server, check a configuration, hash a password."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from scenarios import shipped_scenarios
from server.app import create_app
from server.config import ConfigError, RadiusProvider, Settings, demo_settings, load_settings
from server.logs import configure_logging
from server.passwords import hash_password
from server.seedcrypt import KeyFileError

log = logging.getLogger("mfa.server")


def _config_path(config: str | None) -> str | None:
    return config or os.environ.get("MFA_SERVER_CONFIG") or None


def _settings(config: str | None, data_dir: str) -> Settings:
    path = _config_path(config)
    if path:
        return load_settings(path)
    return demo_settings(Path(data_dir).resolve())


DEMO_SCENARIOS = shipped_scenarios()


def start_demo_radius(
    settings: Settings,
) -> tuple[Settings, subprocess.Popen[str] | None, dict[str, int]]:
    """In demo mode, run the mock RADIUS server with the shipped scenarios on a free port and
    point the demo's RADIUS providers at it, so every response type works with one command."""
    if not DEMO_SCENARIOS.is_dir():
        log.warning("no scenarios folder next to the package: the demo RADIUS users will time out")
        return settings, None, {}
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "mock_radius", "serve", "--scenarios", str(DEMO_SCENARIOS),
         "--port", "0", "--control-port", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    try:
        ready = json.loads(line)
    except ValueError:
        process.kill()
        log.warning("the mock RADIUS server did not start: the demo RADIUS users will time out")
        return settings, None, {}
    providers = [
        p.model_copy(update={"port": ready["port"]}) if isinstance(p, RadiusProvider) else p
        for p in settings.mfa_providers
    ]
    ports = {"port": ready["port"], "controlPort": ready["controlPort"]}
    return settings.model_copy(update={"mfa_providers": providers}), process, ports


class _AnnouncingServer(uvicorn.Server):
    """Prints one JSON line with the real address once the app is ready (port 0 is allowed),
    so scripts and tests wait on that line instead of sleeping."""

    def __init__(self, config: uvicorn.Config, extra: dict[str, object] | None = None) -> None:
        super().__init__(config)
        self.extra = extra or {}

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                line = {"event": "listening", "host": host, "port": port, **self.extra}
                print(json.dumps(line), flush=True)
                return

    async def _serve(self, sockets: list[socket.socket] | None = None) -> None:
        await super()._serve(sockets)
        # A SIGTERM/SIGINT that led to a graceful shutdown is a clean exit (status 0), not a
        # death by signal: uvicorn would otherwise raise the captured signal again.
        self._captured_signals.clear()


def serve(args: argparse.Namespace) -> int:
    configure_logging(args.log_level.upper())
    mock: subprocess.Popen[str] | None = None
    mock_ports: dict[str, int] = {}
    try:
        settings = _settings(args.config, args.data_dir)
        if _config_path(args.config) is None and not args.no_mock_radius:
            settings, mock, mock_ports = start_demo_radius(settings)
        app = create_app(settings)
    except (ConfigError, KeyFileError) as exc:
        print(f"mfa-server: {exc}", file=sys.stderr)
        return 2
    try:
        return _run(app, settings, args, mock_ports)
    finally:
        if mock is not None:
            mock.terminate()
            mock.wait(10)


def _run(app: Starlette, settings: Settings, args: argparse.Namespace, mock: dict[str, int]) -> int:
    host = args.host or settings.server.host
    port = settings.server.port if args.port is None else args.port
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
    )
    server = _AnnouncingServer(config, {"mockRadius": mock} if mock else None)
    asyncio.run(server.serve())
    return 0 if server.started else 1


def check_config(args: argparse.Namespace) -> int:
    try:
        load_settings(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1  # as `mock-radius validate`; a bad --config at start stays 2
    print(f"{args.file}: ok")
    return 0


def hash_command(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass()
    if not password:
        print("mfa-server: empty password", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mfa-server", description=__doc__)
    commands = parser.add_subparsers(dest="command")

    def add_serve_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="YAML configuration (default: $MFA_SERVER_CONFIG or demo)")
        p.add_argument("--host", help="listen address (default: server.host)")
        p.add_argument("--port", type=int, help="listen port, 0 for a free one")
        p.add_argument("--data-dir", default="data", help="data folder of the demo config")
        p.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
        p.add_argument(
            "--no-mock-radius",
            action="store_true",
            help="in demo mode, do not start the mock RADIUS server",
        )

    add_serve_options(parser)
    add_serve_options(commands.add_parser("serve", help="run the server (the default)"))
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    hasher = commands.add_parser("hash-password", help="print an scrypt passwordHash")
    hasher.add_argument("--stdin", action="store_true", help="read the password from stdin")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return check_config(args)
    if args.command == "hash-password":
        return hash_command(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
