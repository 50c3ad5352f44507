"""The ``mock-radius`` command line: serve, validate, schema, record and import."""

from __future__ import annotations

import argparse
import importlib.metadata
import ipaddress
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mock_radius_scenarios import UnknownScenarios, locate

from mfa_shared.ready_line import ready_line
from mock_radius.dedup import DEFAULT_MAX_PENDING
from mock_radius.engine import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_IDLE,
    Engine,
    UnknownScenario,
)
from mock_radius.journal import DEFAULT_MAX_BYTES, Journal
from mock_radius.recording import (
    DEFAULT_PROBE_TIMEOUT,
    DEFAULT_UPSTREAM_TIMEOUT,
    PROBE,
    UPSTREAM_MA_CHOICES,
    Exchange,
    RecordingError,
    read_passwords,
    write_scenario,
)
from mock_radius.scenario import (
    ScenarioError,
    json_schema,
    load_scenario,
    load_scenarios,
    scenario_files,
)

DISTRIBUTION = "appgate-mfa-reference"  # the [project] name in pyproject.toml
DEFAULT_CONTROL_IDLE_TIMEOUT = 30.0  # seconds an idle control API connection is kept
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

    from mock_radius.control import ControlResource
    from mock_radius.control_guard import Edge, control_site
    from mock_radius.protocol import MockRadiusProtocol
    from mock_radius.udp_stats import SocketReport

    try:
        scenarios = load_scenarios(locate(args.scenarios or None))
        engine = Engine(
            scenarios,
            args.scenario,
            seed=args.seed,
            session_idle=args.session_idle,
            max_sessions=args.max_sessions,
            mismatch_hint=args.mismatch_hint,
        )
        clients = [ipaddress.ip_network(c, strict=False) for c in args.client] or None
    except (ScenarioError, UnknownScenarios) as exc:
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
                        ("--journal-bytes", args.journal_bytes),
                        ("--control-idle-timeout", args.control_idle_timeout),
                        ("--recv-buffer", args.recv_buffer or 1)):  # fmt: skip
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
        sockets = {"auth": udp.socket} | ({} if acct is None else {"acct": acct.socket})
        granted = _receive_buffers(sockets, args.recv_buffer)
        resource = ControlResource(protocol, edge=Edge(_loopback(args.control_host)),
                                   sockets=SocketReport(sockets))  # fmt: skip
        control = reactor.listenTCP(args.control_port,
                                    control_site(resource, args.control_idle_timeout),
                                    interface=args.control_host)  # fmt: skip
    except Exception as exc:  # CannotListenError and friends
        print(f"mock-radius: cannot listen: {exc}", file=sys.stderr)
        return 2
    ready = ready_line(
        host=args.host,
        port=udp.getHost().port,
        acctPort=None if acct is None else acct.getHost().port,
        controlPort=control.getHost().port,
        scenarios=sorted(engine.scenarios),
        active=engine.active,
        timeScale=args.time_scale,
        receiveBuffer=granted,
    )
    reactor.callWhenRunning(lambda: print(ready, flush=True))
    _stop_on_signals(reactor)
    reactor.run(installSignalHandlers=False)
    journal.close()
    return 0


def _receive_buffers(sockets: dict[str, Any], requested: int | None) -> dict[str, int]:
    """SO_RCVBUF as asked (the kernel's default without --recv-buffer); what it granted."""
    from mock_radius.udp_stats import held, receive_buffer, set_receive_buffer

    granted = {}
    for name, sock in sockets.items():
        granted[name] = (
            receive_buffer(sock) if requested is None else set_receive_buffer(sock, requested)
        )
        if requested is not None and held(granted[name]) < requested:
            print(json.dumps({
                "event": "receive-buffer", "socket": name, "requested": requested,
                "granted": granted[name], "message": "the kernel granted less than asked "
                "(net.core.rmem_max caps it for unprivileged processes)",
            }), file=sys.stderr, flush=True)  # fmt: skip
    return granted


def _loopback(host: str) -> bool:
    """Is the control API bound to loopback only (then only loopback Host names pass)?"""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _address_or(words: tuple[str, ...]) -> Callable[[str], tuple[str, int] | str]:
    def parse(text: str) -> tuple[str, int] | str:
        if text in words:
            return text
        try:
            return _address(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expected HOST:PORT or {' or '.join(words)}, got {text!r}"
            ) from None

    return parse


def _write_recording(
    args: argparse.Namespace,
    command: str,
    exchanges: list[Exchange],
    out: Path,
    source: str,
    notes: list[str],
    **learned: Any,
) -> bool:
    """The scenario file from ``record`` or ``import``; on failure, the reason on stderr.
    ``learned``: what ``record`` knows beyond the exchanges (passwords, require_ma, ma_note)."""
    try:
        write_scenario(
            exchanges,
            out,
            secret=args.secret,
            source=source,
            keep_passwords=args.keep_passwords,
            keep_timing=args.keep_timing,
            notes=notes,
            **learned,
        )
    except RecordingError as exc:
        print(f"mock-radius {command}: {exc}", file=sys.stderr)
        return False
    return True


def _passwords(args: argparse.Namespace) -> dict[str, str]:
    """--passwords FILE, then --password USER:PASSWORD (the later wins); RecordingError."""
    found: dict[str, str] = {}
    if args.passwords:
        try:
            text = Path(args.passwords).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RecordingError(f"{args.passwords}: cannot read: {exc}") from None
        found.update(read_passwords(text.splitlines(), args.passwords))
    for number, given in enumerate(args.password, 1):
        found.update(read_passwords([given], f"--password #{number}"))
    return found


def _ma_note(proxy: Any, args: argparse.Namespace) -> str:
    if proxy.requires_ma is None:
        return ("Message-Authenticator: not learned (no probe was answered either way); "
                "required, the mock's default.")  # fmt: skip
    if not proxy.learned_by_probe:
        return f"Message-Authenticator: {args.upstream_ma}, as --upstream-ma said."
    if proxy.requires_ma:
        return (
            f"Message-Authenticator: the upstream requires one (a request without one got "
            f"no answer within {args.probe_timeout:g} s; the same with one was answered)."
        )
    return "Message-Authenticator: the upstream does not require one (it answered without)."


def record(args: argparse.Namespace) -> int:
    from twisted.internet import reactor as twisted_reactor

    from mock_radius.record import RecordingProxy

    reactor: Any = twisted_reactor
    out = Path(args.out)
    if not out.parent.is_dir():
        print(f"mock-radius record: {out.parent} is not a folder", file=sys.stderr)
        return 2
    try:
        passwords = _passwords(args)
    except RecordingError as exc:
        print(f"mock-radius record: {exc}", file=sys.stderr)
        return 2
    secret = args.secret.encode()
    proxy = RecordingProxy(
        reactor,
        args.upstream,
        secret,
        (args.upstream_secret or args.secret).encode(),
        upstream_acct=args.upstream_acct,
        upstream_timeout=args.upstream_timeout,
        probe_timeout=args.probe_timeout,
        upstream_ma=args.upstream_ma,
        max_exchanges=args.max_exchanges,
        on_done=lambda: reactor.callLater(0, reactor.stop),
    )
    host, port = args.listen
    try:
        listening = reactor.listenUDP(port, proxy.auth_side, interface=host)
        accounting = None
        if args.listen_acct != "none":
            acct_host, acct_port = (host, 0 if port == 0 else port + 1) if args.listen_acct == (
                "auto") else args.listen_acct  # fmt: skip
            accounting = reactor.listenUDP(acct_port, proxy.accounting_side, interface=acct_host)
        reactor.listenUDP(0, proxy.upstream_side, interface="0.0.0.0")  # noqa: S104 - to reach it
    except Exception as exc:
        print(f"mock-radius record: cannot listen: {exc}", file=sys.stderr)
        return 2
    upstream = f"{args.upstream[0]}:{args.upstream[1]}"
    ready = ready_line(
        host=host,
        port=listening.getHost().port,
        acctPort=None if accounting is None else accounting.getHost().port,
        upstream=upstream,
        upstreamAcct=f"{proxy.upstream_acct[0]}:{proxy.upstream_acct[1]}",
        out=str(out),
    )
    reactor.callWhenRunning(lambda: print(ready, flush=True))
    _stop_on_signals(reactor)
    reactor.run(installSignalHandlers=False)
    proxy.finish()
    notes = []
    if proxy.unanswered:
        notes.append(f"Requests that got no answer from the upstream (drops): {proxy.unanswered}.")
    if proxy.rejected_replies:
        notes.append(f"Upstream replies that did not verify (ignored): {proxy.rejected_replies}.")
    status = proxy.status_server
    if status["relayed"]:
        notes.append(f"Status-Server: {status['relayed']} relayed, {status['answered']} answered "
                     "by the upstream (the mock answers every one itself).")  # fmt: skip
    source = f"a recording proxy in front of {upstream}"
    if not _write_recording(args, "record", proxy.exchanges, out, source, notes,
                            passwords=passwords, require_ma=proxy.requires_ma,
                            ma_note=_ma_note(proxy, args)):  # fmt: skip
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
    try:
        passwords = _passwords(args)
    except RecordingError as exc:
        print(f"mock-radius import: {exc}", file=sys.stderr)
        return 2
    if not _write_recording(args, "import", summary.exchanges, Path(args.out), source, notes,
                            passwords=passwords):  # fmt: skip
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
        "--scenarios",
        help="a folder, one file, or the name of a shipped scenario such as push "
        "(default: every scenario shipped with the mock)",
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
    run.add_argument(
        "--control-host",
        default="127.0.0.1",
        help="address of the control API; on a non-loopback address it also accepts requests "
        "whose Host is an IP address (never another name: DNS rebinding)",
    )
    run.add_argument("--control-port", type=int, default=0, help="HTTP port, 0 for a free one")
    run.add_argument(
        "--control-idle-timeout",
        type=float,
        default=DEFAULT_CONTROL_IDLE_TIMEOUT,
        help="seconds a control API connection may stay idle before it is closed",
    )
    run.add_argument(
        "--recv-buffer",
        type=int,
        metavar="BYTES",
        help="SO_RCVBUF of the RADIUS sockets, for bursts (default: the kernel's; the ready "
        "line and /health report what the kernel granted)",
    )
    run.add_argument("--time-scale", type=float, default=1.0, help="multiplies every delay")
    run.add_argument(
        "--seed",
        help="makes generated States reproducible: the same requests give the same States in "
        "every run (default: random States, new in every process)",
    )
    run.add_argument(
        "--mismatch-hint",
        action="store_true",
        help="send the mismatch hint ('mock-radius: no step of ... matches') as a Reply-Message "
        "for scenarios whose onMismatch does not say (default: journalled only)",
    )
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
        p.add_argument(
            "--passwords",
            metavar="FILE",
            help="USER:PASSWORD per line: replays of these users check the password itself, "
            "for PAP and CHAP (written in clear text: a CHAP response cannot be checked against "
            "a hash)",
        )
        p.add_argument(
            "--password",
            action="append",
            default=[],
            metavar="USER:PASSWORD",
            help="one user's password, as a line of --passwords (repeatable; visible to ps: "
            "prefer the file)",
        )

    rec = commands.add_parser(
        "record", help="record a real RADIUS server through a proxy", formatter_class=helpful
    )
    rec.add_argument("--listen", type=_address, required=True, help="HOST:PORT for clients")
    rec.add_argument(
        "--listen-acct",
        type=_address_or(("auto", "none")),
        default="auto",
        help="HOST:PORT for clients' accounting and Status-Server, none, or auto (the --listen "
        "host, its port + 1, a free one when that is 0)",
    )
    rec.add_argument("--upstream", type=_address, required=True, help="HOST:PORT of the server")
    rec.add_argument(
        "--upstream-acct",
        type=_address,
        help="HOST:PORT of the server's accounting port (default: --upstream's port + 1)",
    )
    rec.add_argument("--upstream-secret", help="the upstream's secret (default: --secret)")
    rec.add_argument("--upstream-timeout", type=float, default=DEFAULT_UPSTREAM_TIMEOUT,
                     help="seconds; then a drop")  # fmt: skip
    rec.add_argument(
        "--upstream-ma",
        choices=UPSTREAM_MA_CHOICES,
        default=PROBE,
        help="does the upstream require a Message-Authenticator? probe: learn it (the first "
        "request goes out without one; no answer within --probe-timeout: again with one)",
    )
    rec.add_argument(
        "--probe-timeout",
        type=float,
        default=DEFAULT_PROBE_TIMEOUT,
        help="seconds the probe waits for an answer without a Message-Authenticator",
    )
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
