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
from mock_radius.scenario import ScenarioError, load_scenario, load_scenarios, scenario_files

DEFAULT_SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return validate(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
