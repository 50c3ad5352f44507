"""``mock-radius``: serve scenarios over UDP, or validate scenario files."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from pathlib import Path
from typing import Any

from mock_radius.engine import Engine, UnknownScenario
from mock_radius.journal import Journal
from mock_radius.recording import Exchange, RecordingError, write_scenario
from mock_radius.scenario import ScenarioError, load_scenario, load_scenarios, scenario_files
from scenarios import shipped_scenarios

DEFAULT_SCENARIOS = shipped_scenarios()


def serve(args: argparse.Namespace) -> int:
    from twisted.internet import reactor as twisted_reactor
    from twisted.web.server import Site

    from mock_radius.control import ControlResource
    from mock_radius.protocol import MockRadiusProtocol

    try:
        scenarios = load_scenarios(Path(args.scenarios))
        engine = Engine(scenarios, args.scenario)
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
    if args.time_scale <= 0:
        print("mock-radius: --time-scale must be positive", file=sys.stderr)
        return 2
    reactor: Any = twisted_reactor  # zope interfaces do not type-check under plain mypy
    journal = Journal(file=Path(args.journal_file) if args.journal_file else None)
    protocol = MockRadiusProtocol(
        engine, journal, reactor, clients=clients, time_scale=args.time_scale
    )
    try:
        udp = reactor.listenUDP(args.port, protocol, interface=args.host)
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
        "controlPort": control.getHost().port,
        "scenarios": sorted(engine.scenarios),
        "active": engine.active,
        "timeScale": args.time_scale,
    }
    reactor.callWhenRunning(lambda: print(json.dumps(ready), flush=True))
    reactor.run()
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
    reactor.run()
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
                print(f"{file}: ok ({scenario.name}, {len(scenario.steps)} steps)")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mock-radius", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve scenarios over UDP")
    run.add_argument("--scenarios", default=str(DEFAULT_SCENARIOS), help="a folder or one file")
    run.add_argument("--scenario", help="the scenario active for every user at start")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=1812, help="UDP port, 0 for a free one")
    run.add_argument("--control-host", default="127.0.0.1")
    run.add_argument("--control-port", type=int, default=0, help="HTTP port, 0 for a free one")
    run.add_argument("--time-scale", type=float, default=1.0, help="multiplies every delay")
    run.add_argument("--journal-file", help="append every journal entry to this JSON-lines file")
    run.add_argument(
        "--client",
        action="append",
        default=[],
        help="network allowed to send requests (repeatable; default loopback)",
    )
    check = commands.add_parser("validate", help="validate scenario files")
    check.add_argument("files", nargs="+")

    def recording_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--secret", required=True, help="the clients' shared secret")
        p.add_argument("--out", required=True, help="the scenario file to write")
        p.add_argument("--keep-passwords", action="store_true", help="clear text, not hashes")
        p.add_argument("--keep-timing", action="store_true", help="replay the observed delays")

    rec = commands.add_parser("record", help="record a real RADIUS server through a proxy")
    rec.add_argument("--listen", type=_address, required=True, help="HOST:PORT for clients")
    rec.add_argument("--upstream", type=_address, required=True, help="HOST:PORT of the server")
    rec.add_argument("--upstream-secret", help="the upstream's secret (default: --secret)")
    rec.add_argument("--upstream-timeout", type=float, default=5.0, help="seconds; then a drop")
    rec.add_argument("--max-exchanges", type=int, help="stop after this many exchanges")
    recording_options(rec)
    imp = commands.add_parser("import", help="a scenario from a pcap/pcapng capture")
    imp.add_argument("capture")
    imp.add_argument("--allow-truncated", action="store_true")
    recording_options(imp)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return validate(args)
    if args.command == "record":
        return record(args)
    if args.command == "import":
        return import_capture(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
