# -*- test-case-name: tests.test_cli, tests.test_keys -*-
"""mfa-server: run the reference server, check a configuration, hash a password."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib.metadata
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appgate_mfa_server import keys
from appgate_mfa_server.config import (
    ConfigError,
    DefaultTimeBasedProvider,
    RadiusProvider,
    ServerSettings,
    Settings,
    StorageSettings,
    demo_settings,
    load_settings,
)
from appgate_mfa_server.http_guard import ConnectionLimits
from appgate_mfa_server.keys import load_key, open_checked_key, shown_url
from appgate_mfa_server.logs import configure_logging
from appgate_mfa_server.passwords import hash_password
from appgate_mfa_server.runner import ServeOptions
from appgate_mfa_server.seedcrypt import KeyFileError
from appgate_mfa_server.store import Store, open_store
from appgate_mfa_server.testcontrol import ownership
from appgate_mfa_server.testcontrol import startup as test_control
from appgate_mfa_server.testcontrol.connection import CONNECTION
from appgate_mfa_server.tls import TlsError, TlsFiles, check_pair, self_signed

DISTRIBUTION = "appgate-mfa-reference"  # the [project] name in pyproject.toml


def installed_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # a checkout that was never installed
        return "unknown (not installed)"


def _config_path(config: str | None) -> str | None:
    return config or os.environ.get("MFA_SERVER_CONFIG") or None


def _settings(config: str | None, data_dir: str) -> Settings:
    path = _config_path(config)
    if path:
        return load_settings(path)
    return demo_settings(Path(data_dir).resolve())


def _with_test_control(settings: Settings) -> Settings:
    """``--test-control``: server.testControl.enabled, whatever the file says."""
    server = settings.server
    control = server.test_control.model_copy(update={"enabled": True})
    return settings.model_copy(
        update={"server": server.model_copy(update={"test_control": control})}
    )


def _with_demo_radius_port(settings: Settings, port: int) -> Settings:
    providers = [
        p.model_copy(update={"port": port}) if isinstance(p, RadiusProvider) else p
        for p in settings.mfa_providers
    ]
    return settings.model_copy(update={"mfa_providers": providers})


def _tls_files(args: argparse.Namespace, settings: Settings) -> TlsFiles | None:
    if bool(args.tls_cert) != bool(args.tls_key):
        raise TlsError("give both --tls-cert and --tls-key")
    if args.tls_cert:
        files = TlsFiles(Path(args.tls_cert).resolve(), Path(args.tls_key).resolve())
    elif settings.server.tls is not None:
        tls = settings.server.tls
        files = TlsFiles(Path(tls.cert_file), Path(tls.key_file))
    elif args.tls:
        files = self_signed(Path(args.data_dir).resolve())
    else:
        return None
    check_pair(files)
    return files


def serve_options(
    args: argparse.Namespace, settings: Settings, tls: TlsFiles | None
) -> ServeOptions:
    server = settings.server
    ready: dict[str, object] = {"testControl": server.test_control.enabled}
    if tls is not None:
        ready["tlsCertificate"] = str(tls.cert_file)
    return ServeOptions(
        host=args.host or server.host,
        port=server.port if args.port is None else args.port,
        workers=args.workers or server.workers,
        limits=ConnectionLimits(
            max_header_bytes=server.max_header_bytes,
            head_timeout=server.request_timeout,
            max_connections=server.max_connections,
            max_connections_per_address=server.connection_share,
            tls_handshake_timeout=server.tls_handshake_timeout,
        ),
        keep_alive=server.keep_alive_timeout,
        tls=tls,
        ready_fields=ready,
        extension=CONNECTION if server.test_control.enabled else None,
    )


def serve(args: argparse.Namespace) -> int:
    from appgate_mfa_server import runner
    from appgate_mfa_server.app import create_app
    from appgate_mfa_server.demo_radius import DemoRadius, MockStartError, start_demo_radius

    configure_logging(args.log_level)
    try:
        settings = _settings(args.config, args.data_dir)
        if args.test_control:
            settings = _with_test_control(settings)
        tls = _tls_files(args, settings)
        # the database and the key are checked here, once, so a problem stops the start with
        # a message and status 2 instead of failing in every worker
        asyncio.run(_check_storage(settings))
    except (ConfigError, KeyFileError, TlsError, StorageError, ownership.NotItsDatabase) as exc:
        print(f"mfa-server: {exc}", file=sys.stderr)
        return 2
    options = serve_options(args, settings, tls)
    refused = test_control.refusal(settings, options.host, options.workers)
    if refused is not None:
        print(f"mfa-server: {refused}", file=sys.stderr)
        return 2
    if settings.server.test_control.enabled:
        fields = {"event": "test_control_on", "message": test_control.WARNING}
        logging.getLogger("mfa.server").warning("test control", extra={"fields": fields})
    mock: DemoRadius | None = None
    if _config_path(args.config) is None and not args.no_mock_radius:
        try:
            mock = start_demo_radius()
        except MockStartError as exc:
            print(f"mfa-server: the demo's mock RADIUS server did not start: {exc}; "
                  "the RADIUS demo users will time out", file=sys.stderr)  # fmt: skip
        else:
            settings = _with_demo_radius_port(settings, mock.port)
            ports = {"port": mock.port, "controlPort": mock.control_port}
            options.ready_fields["mockRadius"] = ports

    def make_app(on_ready: Callable[[], None]) -> Any:
        return create_app(settings, on_ready=on_ready)

    try:
        return runner.serve(make_app, options)
    except OSError as exc:
        print(f"mfa-server: cannot listen on {options.host}:{options.port}: {exc.strerror}",
              file=sys.stderr)  # fmt: skip
        return 2
    finally:
        if mock is not None:
            mock.stop()


class StorageError(Exception):
    """The database cannot be opened or migrated; the message is for the operator."""


async def _open_store(settings: Settings) -> Store:
    store = open_store(settings.storage.url)
    ownership.claim_if_new(store, settings)
    try:
        await store.open()
    except Exception as exc:  # sqlite3, psycopg and pool errors, a newer schema
        raise StorageError(
            f"cannot open the database {shown_url(settings.storage.url)}: {exc}"
        ) from None
    return store


async def _check_storage(settings: Settings) -> None:
    store = await _open_store(settings)
    try:
        await ownership.check(store, settings)
        await open_checked_key(store, settings.storage)
    finally:
        await store.close()
    keys.warn_if_exposed(settings.storage)


def rotate_key_command(args: argparse.Namespace) -> int:
    """Re-encrypt every seed with a new key, in one transaction (stop the servers first)."""

    async def rotate_all(settings: Settings) -> int:
        store = await _open_store(settings)
        try:
            old = await open_checked_key(store, settings.storage)
            new = load_key(
                StorageSettings(url=settings.storage.url, encryption_key_file=args.new_key_file),
                create=True,
            )
            return await keys.rotate(store, old, new)
        finally:
            await store.close()

    try:
        settings = _settings(args.config, args.data_dir)
        count = asyncio.run(rotate_all(settings))
    except (ConfigError, KeyFileError, StorageError) as exc:
        print(f"mfa-server rotate-key: {exc}", file=sys.stderr)
        return 2
    print(
        f"re-encrypted {count} seeds with the key in {args.new_key_file}; RADIUS states issued "
        "before now are void. Point storage.encryptionKeyFile at that file (or put it in place "
        "of the old one) before starting the server again."
    )
    return 0


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


def totp_command(args: argparse.Namespace) -> int:
    """The current code of a TOTP secret, so the demo needs no authenticator app."""
    from appgate_mfa_server.mfa import totp

    try:
        code = totp.code_at(args.secret, time.time() if args.at is None else args.at,
                            totp.TotpParameters(args.digits, args.period))  # fmt: skip
    except ValueError as exc:
        print(f"mfa-server totp: {exc}", file=sys.stderr)
        return 2
    print(code)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mfa-server",
        description="Run the reference server (the default command), check a configuration, "
        "hash a password, print a TOTP code or re-encrypt the seeds with a new key.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command")
    defaults = {key: field.default for key, field in ServerSettings.model_fields.items()}

    def add_serve_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="YAML configuration (default: $MFA_SERVER_CONFIG or demo)")
        p.add_argument("--host", help=f"listen address (default: server.host, {defaults['host']})")
        p.add_argument(
            "--port",
            type=int,
            help=f"listen port, 0 for a free one (default: server.port, {defaults['port']})",
        )
        p.add_argument(
            "--workers",
            type=int,
            help=f"worker processes (default: server.workers, {defaults['workers']})",
        )
        p.add_argument(
            "--data-dir",
            default="data",
            help="data folder of the demo and of a --tls certificate (default: ./data)",
        )
        p.add_argument(
            "--log-level",
            default="info",
            choices=["debug", "info", "warning"],
            help="default: info (an access line and audit events per request)",
        )
        p.add_argument("--tls", action="store_true",
                       help="serve HTTPS; without a configured certificate, make a self-signed "
                       "one for localhost in the data folder")  # fmt: skip
        p.add_argument("--tls-cert", help="PEM certificate (chain) to serve HTTPS with")
        p.add_argument("--tls-key", help="PEM private key of --tls-cert")
        p.add_argument(
            "--test-control",
            action="store_true",
            help="serve /_test/ (virtual clock, faults, known seeds, journal): for tests only",
        )
        p.add_argument(
            "--no-mock-radius",
            action="store_true",
            help="in demo mode, do not start the mock RADIUS server",
        )

    add_serve_options(parser)
    add_serve_options(commands.add_parser("serve", help="run the server (the default)"))
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", help="the YAML configuration file to check")
    hasher = commands.add_parser("hash-password", help="print an scrypt passwordHash")
    hasher.add_argument("--stdin", action="store_true", help="read the password from stdin")
    rotate = commands.add_parser(
        "rotate-key", help="re-encrypt every seed with a new key (stop the servers first)"
    )
    rotate.add_argument("--config", help="YAML configuration (default: $MFA_SERVER_CONFIG or demo)")
    rotate.add_argument(
        "--data-dir", default="data", help="data folder of the demo config (default: ./data)"
    )
    rotate.add_argument(
        "--new-key-file", required=True, help="the new key (made, mode 0600, if missing)"
    )
    code = commands.add_parser("totp", help="print the current TOTP code of a base32 secret")
    code.add_argument("secret", help="the secret, base32 (as in an otpauth:// URL)")
    code.add_argument("--at", type=float, help="epoch seconds instead of now")
    totp_defaults = DefaultTimeBasedProvider.model_fields
    code.add_argument(
        "--digits", type=int, default=totp_defaults["digits"].default,
        help="digits of the code, as the provider's digits (default: %(default)s)",
    )  # fmt: skip
    code.add_argument(
        "--period", type=int, default=totp_defaults["period"].default,
        help="seconds per time step, as the provider's period (default: %(default)s)",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        print("mfa-server: --workers must be at least 1", file=sys.stderr)
        return 2
    commands: dict[str | None, Callable[[argparse.Namespace], int]] = {
        "check-config": check_config,
        "hash-password": hash_command,
        "totp": totp_command,
        "rotate-key": rotate_key_command,
    }
    return commands.get(args.command, serve)(args)


if __name__ == "__main__":
    sys.exit(main())
