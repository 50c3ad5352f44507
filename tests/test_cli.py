"""Both command lines explain themselves: every argument has help that shows its default,
`--version` says the installed version, and `mock-radius --help` is plain text naming every
command; `mock-radius` alone serves the shipped scenarios."""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appgate_mfa_server import __main__ as server_cli
from mock_radius import cli as mock_cli
from tests.conftest import wait_for_ready_line
from tests.programs import command as program_command

ROOT = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
PARSERS = {"mfa-server": server_cli._parser, "mock-radius": mock_cli._parser}
MOCK_COMMANDS = ["serve", "validate", "schema", "record", "import"]


def _commands(
    parser: argparse.ArgumentParser, name: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The parser and every subcommand's, by the name a user types."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from _commands(sub, f"{name} {command}")


def _shown_default(action: argparse.Action) -> bool:
    return not (action.default is None or action.default is False or action.default in ([], ""))


@pytest.mark.parametrize("program", PARSERS)
def test_every_argument_has_help_that_shows_its_default(program: str) -> None:
    checked = 0
    for command, parser in _commands(PARSERS[program](), program):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                                   argparse._SubParsersAction)):  # fmt: skip
                continue
            where = f"{command} {action.option_strings or action.dest}"
            assert action.help, f"{where} has no help"
            entry = " ".join(formatter._format_action(action).split())  # as --help shows it
            if _shown_default(action):
                assert str(action.default) in entry, f"{where}: its default is not shown"
            checked += 1
    assert checked > 20


def test_the_defaults_worth_showing_are_shown() -> None:
    """The ones the issue named: 0 is a default too (the control port's)."""
    serve = dict(_commands(mock_cli._parser(), "mock-radius"))["mock-radius serve"]
    text = " ".join(serve.format_help().split())
    assert "UDP auth port, 0 for a free one (default: 1812)" in text
    assert "HTTP port, 0 for a free one (default: 0)" in text
    totp = dict(_commands(server_cli._parser(), "mfa-server"))["mfa-server totp"]
    text = " ".join(totp.format_help().split())
    assert "(default: 6)" in text and "(default: 30)" in text
    top = " ".join(server_cli._parser().format_help().split())
    assert "(default: server.port, 8443)" in top


@pytest.mark.parametrize("program", PARSERS)
def test_version(program: str) -> None:
    result = subprocess.run(
        [*program_command(program), "--version"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{program} {VERSION}\n"


def test_mock_radius_help_is_plain_text_naming_every_command() -> None:
    result = subprocess.run(
        [*program_command("mock-radius"), "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert "``" not in result.stdout  # no reStructuredText from a docstring
    listed = result.stdout.split("\ncommands:\n", 1)[1]
    for command in MOCK_COMMANDS:
        assert f"\n    {command} " in listed, command
    assert "Run alone, mock-radius serves the scenarios shipped with it" in result.stdout


def test_mock_radius_alone_serves_the_shipped_scenarios() -> None:
    """`mock-radius` with no command binds its default ports, 1812 and 1813: in a network
    namespace of its own (unshare), so the test needs no free well-known port."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("this test needs unshare (util-linux)")
    ready, status = _ready_then_stopped(
        [unshare, "--map-root-user", "--net", *program_command("mock-radius")]
    )
    shipped = sorted(path.stem for path in (ROOT / "scenarios").glob("*.yaml"))
    assert (ready["port"], ready["acctPort"]) == (1812, 1813)
    assert ready["scenarios"] == shipped and len(shipped) == 15
    assert status == 0


def _ready_then_stopped(command: list[str]) -> tuple[dict[str, Any], int]:
    """The ready line of ``command`` started from the filesystem's root (no checkout around
    it), and its exit status after SIGTERM."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd="/")  # fmt: skip
    try:
        assert process.stdout is not None
        ready = wait_for_ready_line(process.stdout)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    return ready, process.returncode


def test_mock_radius_serves_a_shipped_scenario_by_name() -> None:
    """An install has no scenarios/ folder to point at: `--scenarios push` names the shipped
    one; a name that is neither a path nor shipped is refused with the names there are."""
    ready, status = _ready_then_stopped(
        [*program_command("mock-radius"), "serve", "--scenarios", "push", "--port", "0",
         "--control-port", "0"]
    )  # fmt: skip
    assert ready["scenarios"] == ["push"] and status == 0
    refused = subprocess.run(
        [*program_command("mock-radius"), "serve", "--scenarios", "pushh", "--port", "0"],
        capture_output=True, text=True, timeout=30, cwd="/",
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        "pushh: no such file or folder, and no shipped scenario of that name (shipped: challenge,"
    )
