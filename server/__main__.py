"""``mfa-server``: run the reference server, check a configuration, hash a password."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import socket
import sys
from pathlib import Path

import uvicorn

from server.app import create_app
from server.config import ConfigError, Settings, demo_settings, load_settings
from server.logs import configure_logging
from server.passwords import hash_password
from server.seedcrypt import KeyFileError


def _settings(config: str | None, data_dir: str) -> Settings:
    path = config or os.environ.get("MFA_SERVER_CONFIG")
    if path:
        return load_settings(path)
    return demo_settings(Path(data_dir).resolve())


class _AnnouncingServer(uvicorn.Server):
    """Prints one JSON line with the real address once the app is ready (port 0 is allowed),
    so scripts and tests wait on that line instead of sleeping."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                print(json.dumps({"event": "listening", "host": host, "port": port}), flush=True)
                return

    async def _serve(self, sockets: list[socket.socket] | None = None) -> None:
        await super()._serve(sockets)
        # A SIGTERM/SIGINT that led to a graceful shutdown is a clean exit (status 0), not a
        # death by signal: uvicorn would otherwise raise the captured signal again.
        self._captured_signals.clear()


def serve(args: argparse.Namespace) -> int:
    configure_logging(args.log_level.upper())
    try:
        settings = _settings(args.config, args.data_dir)
        app = create_app(settings)
    except (ConfigError, KeyFileError) as exc:
        print(f"mfa-server: {exc}", file=sys.stderr)
        return 2
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
    server = _AnnouncingServer(config)
    asyncio.run(server.serve())
    return 0 if server.started else 1


def check_config(args: argparse.Namespace) -> int:
    try:
        load_settings(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
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
