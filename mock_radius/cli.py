"""The ``mock-radius`` command line: serve, validate, schema, record and import."""

from __future__ import annotations

import argparse
import importlib.metadata
import ipaddress
import json
import signal
import sys
from pathlib import Path
from typing import Any

from mock_radius.dedup import DEFAULT_MAX_PENDING
from mock_radius.engine import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_IDLE,
    Engine,
    UnknownScenario,
)
from mock_radius.journal import DEFAULT_MAX_BYTES, Journal
from mock_radius.recording import Exchange, RecordingError, write_scenario
from mock_radius.scenario import (
    ScenarioError,
    json_schema,
    load_scenario,
    load_scenarios,
    scenario_files,
)
from scenarios import shipped_scenarios

DISTRIBUTION = "appgate-mfa-reference"  # the [project] name in pyproject.toml
DESCRIPTION = """\
A RADIUS server for testing RADIUS clients: it replays scripted scenarios over UDP
(authentication, accounting, Status-Server), with a control API over HTTP. It can also check
scenario files, print their format, and write new ones from a real server (record) or from a
packet capture (import).

Run alone, mock-radius serves the scenarios shipped with it, as 'mock-radius serve' does with
its defaults ('mock-radius serve --help' lists them)."""
EPILOG = "Each command has its own options: mock-radius COMMAND --help."


def _stop_on_signals(reactor: Any) -> None:
    """SIGINT and SIGTERM stop the reactor. Installed explicitly: a shell starting us in the
    background hands down SIGINT ignored, and Twisted keeps an ignored SIGINT as it is."""

    def stop(_signum: int, _frame: object) -> None:
        reactor.callFromThread(_stop, reactor)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _stop(reactor: Any) -> None:
    if reactor.running:
        reactor.stop()


def _acct_port(args: argparse.Namespace) -> int | None:
    """The accounting port: as given, none, or the auth port + 1 (free when the auth port is)."""
    if args.acct_port == "none":
        return None
    if args.acct_port == "auto":
        return 0 if args.port == 0 else args.port + 1
    return int(args.acct_port)


def serve(args: argparse.Namespace) -> int:
    from twisted.internet import reactor as twisted_reactor
    from twisted.web.server import Site

    from mock_radius.control import ControlResource
    from mock_radius.protocol import MockRadiusProtocol

    try:
        location = Path(args.scenarios) if args.scenarios else shipped_scenarios()
        scenarios = load_scenarios(location)
        engine = Engine(
            scenarios,
            args.scenario,
            seed=args.seed,
            session_idle=args.session_idle,
            max_sessions=args.max_sessions,
        )
        clients = [ipaddress.ip_network(c, strict=False) for c in args.client] or None
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2
    except UnknownScenario:
        print(f"mock-radius: no scenario named {args.scenario!r}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"mock-radius: bad --client: {exc}", file=sys.stderr)
        return 2
    for name, value in (("--time-scale", args.time_scale), ("--session-idle", args.session_idle),
                        ("--max-sessions", args.max_sessions), ("--max-pending", args.max_pending),
                        ("--journal-bytes", args.journal_bytes)):  # fmt: skip
        if value <= 0:
            print(f"mock-radius: {name} must be positive", file=sys.stderr)
            return 2
    reactor: Any = twisted_reactor  # zope interfaces do not type-check under plain mypy
    journal = Journal(
        max_bytes=args.journal_bytes,
        file=Path(args.journal_file) if args.journal_file else None,
        time_scale=args.time_scale,
    )
    protocol = MockRadiusProtocol(
        engine,
        journal,
        reactor,
        clients=clients,
        time_scale=args.time_scale,
        max_pending=args.max_pending,
    )
    acct_port = _acct_port(args)
    try:
        udp = reactor.listenUDP(args.port, protocol, interface=args.host)
        acct = None
        if acct_port is not None:
            acct = reactor.listenUDP(acct_port, protocol.accounting, interface=args.host)
        site = Site(ControlResource(protocol))
        site.noisy = False
        control = reactor.listenTCP(args.control_port, site, interface=args.control_host)
    except Exception as exc:  # CannotListenError and friends
        print(f"mock-radius: cannot listen: {exc}", file=sys.stderr)
        return 2
    ready = {
        "event": "ready",
        "host": args.host,
        "port": udp.getHost().port,
        "acctPort": None if acct is None else acct.getHost().port,
        "controlPort": control.getHost().port,
        "scenarios": sorted(engine.scenarios),
        "active": engine.active,
        "timeScale": args.time_scale,
    }
    reactor.callWhenRunning(lambda: print(json.dumps(ready), flush=True))
    _stop_on_signals(reactor)
    reactor.run(installSignalHandlers=False)
    journal.close()
    return 0


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _write_recording(
    args: argparse.Namespace,
    command: str,
    exchanges: list[Exchange],
    out: Path,
    source: str,
    notes: list[str],
) -> bool:
    """The scenario file from ``record`` or ``import``; on failure, the reason on stderr."""
    try:
        write_scenario(
            exchanges,
            out,
            secret=args.secret,
            source=source,
            keep_passwords=args.keep_passwords,
            keep_timing=args.keep_timing,
            notes=notes,
        )
    except RecordingError as exc:
        print(f"mock-radius {command}: {exc}", file=sys.stderr)
        return False
    return True


def record(args: argparse.Namespace) -> int:
    from twisted.internet import reactor as twisted_reactor

    from mock_radius.record import RecordingProxy

    reactor: Any = twisted_reactor
    out = Path(args.out)
    if not out.parent.is_dir():
        print(f"mock-radius record: {out.parent} is not a folder", file=sys.stderr)
        return 2
    secret = args.secret.encode()
    proxy = RecordingProxy(
        reactor,
        args.upstream,
        secret,
        (args.upstream_secret or args.secret).encode(),
        upstream_timeout=args.upstream_timeout,
        max_exchanges=args.max_exchanges,
        on_done=lambda: reactor.callLater(0, reactor.stop),
    )
    try:
        listening = reactor.listenUDP(args.listen[1], proxy, interface=args.listen[0])
        reactor.listenUDP(0, proxy.upstream_side, interface="0.0.0.0")  # noqa: S104 - to reach it
    except Exception as exc:
        print(f"mock-radius record: cannot listen: {exc}", file=sys.stderr)
        return 2
    ready = {
        "event": "recording",
        "host": args.listen[0],
        "port": listening.getHost().port,
        "upstream": f"{args.upstream[0]}:{args.upstream[1]}",
        "out": str(out),
    }
    reactor.callWhenRunning(lambda: print(json.dumps(ready), flush=True))
    _stop_on_signals(reactor)
    reactor.run(installSignalHandlers=False)
    notes = []
    if proxy.unanswered:
        notes.append(f"Requests that got no answer from the upstream (drops): {proxy.unanswered}.")
    if proxy.rejected_replies:
        notes.append(f"Upstream replies that did not verify (ignored): {proxy.rejected_replies}.")
    source = f"a recording proxy in front of {ready['upstream']}"
    if not _write_recording(args, "record", proxy.exchanges, out, source, notes):
        return 1
    print(json.dumps({"event": "written", "out": str(out), "exchanges": len(proxy.exchanges)}))
    return 0


def import_capture(args: argparse.Namespace) -> int:
    from mock_radius.capture import CaptureError, read_capture

    capture = Path(args.capture)
    try:
        summary = read_capture(capture, args.secret.encode())
    except CaptureError as exc:
        print(f"mock-radius import: {exc}", file=sys.stderr)
        return 1
    if summary.truncated and not args.allow_truncated:
        print(
            f"mock-radius import: {capture}: the capture is truncated (after "
            f"{summary.datagrams} UDP datagrams); pass --allow-truncated to import what it holds",
            file=sys.stderr,
        )
        return 1
    notes = [f"{summary.datagrams} UDP datagrams read, {summary.not_radius} not RADIUS."]
    if summary.truncated:
        notes.append("PARTIAL: the capture is truncated; exchanges after the cut are missing.")
    if summary.unverified_replies:
        notes.append(f"{summary.unverified_replies} replies did not verify and were left out.")
    source = f"the capture {capture.name}"
    if not _write_recording(args, "import", summary.exchanges, Path(args.out), source, notes):
        return 1
    print(f"{args.out}: {len(summary.exchanges)} exchanges from {capture}")
    return 0


def validate(args: argparse.Namespace) -> int:
    failed = False
    for location in args.files:
        for file in scenario_files(Path(location)):
            try:
                scenario = load_scenario(file)
            except ScenarioError as exc:
                print(exc, file=sys.stderr)
                failed = True
            else:
                count = len(scenario.steps)
                print(f"{file}: ok ({scenario.name}, {count} step{'' if count == 1 else 's'})")
    return 1 if failed else 0


def schema(_args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0


def _acct_port_option(text: str) -> str:
    if text in ("auto", "none") or (text.isdigit() and 0 <= int(text) <= 65535):
        return text
    raise argparse.ArgumentTypeError(f"expected a port, auto or none, got {text!r}")


class _ShowDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, where it has one worth showing (0 is one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.default in ([], ""):
            return action.help or ""
        return super()._get_help_string(action) or ""


def installed_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # a checkout that was never installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    helpful = _ShowDefaults
    parser = argparse.ArgumentParser(
        prog="mock-radius",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    run = commands.add_parser(
        "serve", help="serve scenarios over UDP (the default)", formatter_class=helpful
    )
    run.add_argument(
        "--scenarios", help="a folder or one file (default: the scenarios shipped with the mock)"
    )
    run.add_argument("--scenario", help="the scenario active for every user at start")
    run.add_argument("--host", default="127.0.0.1", help="address of the RADIUS ports")
    run.add_argument("--port", type=int, default=1812, help="UDP auth port, 0 for a free one")
    run.add_argument(
        "--acct-port",
        type=_acct_port_option,
        default="auto",
        help="UDP accounting port: a number (0: a free one), none, or auto (--port + 1, a free "
        "one when --port is 0)",
    )
    run.add_argument("--control-host", default="127.0.0.1", help="address of the control API")
    run.add_argument("--control-port", type=int, default=0, help="HTTP port, 0 for a free one")
    run.add_argument("--time-scale", type=float, default=1.0, help="multiplies every delay")
    run.add_argument("--seed", default="", help="mixed into generated States (unique per run)")
    run.add_argument(
        "--session-idle",
        type=float,
        default=DEFAULT_SESSION_IDLE,
        help="seconds without a request after which an exchange or a user's counts are dropped",
    )
    run.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_MAX_SESSIONS,
        help="live exchanges (and users' counts) kept at most; the oldest go first",
    )
    run.add_argument(
        "--max-pending",
        type=int,
        default=DEFAULT_MAX_PENDING,
        help="delayed replies that may wait at once, per port; more are dropped (overload)",
    )
    run.add_argument(
        "--journal-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        help="memory the journal may use; the oldest entries go first",
    )
    run.add_argument("--journal-file", help="append every journal entry to this JSON-lines file")
    run.add_argument(
        "--client",
        action="append",
        default=[],
        help="network allowed to send requests (repeatable; default loopback)",
    )
    check = commands.add_parser("validate", help="check scenario files", formatter_class=helpful)
    check.add_argument("files", nargs="+", help="scenario files, or folders of them (*.yaml)")
    commands.add_parser(
        "schema", help="print the scenario format as JSON Schema", formatter_class=helpful
    )

    def recording_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--secret", required=True, help="the clients' shared secret")
        p.add_argument("--out", required=True, help="the scenario file to write")
        p.add_argument("--keep-passwords", action="store_true", help="clear text, not hashes")
        p.add_argument("--keep-timing", action="store_true", help="replay the observed delays")

    rec = commands.add_parser(
        "record", help="record a real RADIUS server through a proxy", formatter_class=helpful
    )
    rec.add_argument("--listen", type=_address, required=True, help="HOST:PORT for clients")
    rec.add_argument("--upstream", type=_address, required=True, help="HOST:PORT of the server")
    rec.add_argument("--upstream-secret", help="the upstream's secret (default: --secret)")
    rec.add_argument("--upstream-timeout", type=float, default=5.0, help="seconds; then a drop")
    rec.add_argument("--max-exchanges", type=int, help="stop after this many exchanges")
    recording_options(rec)
    imp = commands.add_parser(
        "import", help="a scenario from a pcap/pcapng capture", formatter_class=helpful
    )
    imp.add_argument("capture", help="the pcap or pcapng file")
    imp.add_argument(
        "--allow-truncated",
        action="store_true",
        help="import what a truncated capture holds (the file says it is partial)",
    )
    recording_options(imp)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `mock-radius` alone: serve the shipped scenarios
        args = parser.parse_args(["serve"])
    if args.command == "validate":
        return validate(args)
    if args.command == "record":
        return record(args)
    if args.command == "import":
        return import_capture(args)
    if args.command == "schema":
        return schema(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
