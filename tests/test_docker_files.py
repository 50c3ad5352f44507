"""docker/ cannot be built here (no Docker engine), so check what can be checked: the compose
file parses and wires the services, every command line is one our CLIs accept, and the
server's configuration in it is valid."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from mock_radius import cli as mock_cli
from server import __main__ as server_cli
from server.config import load_settings
from tests.conftest import wait_for_json_line

DOCKER = Path(__file__).resolve().parent.parent / "docker"


def compose() -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_wires_server_mock_and_postgres() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "mock-radius", "server"}
    assert services["server"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "mock-radius": {"condition": "service_healthy"},
    }
    for name in ("server", "mock-radius"):
        assert services[name]["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    env = services["postgres"]["environment"]
    settings = load_settings(DOCKER / "server.yaml")
    assert settings.storage.url == (
        f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@postgres:5432/"
        f"{env['POSTGRES_DB']}"
    )
    radius = [p for p in settings.mfa_providers if p.type == "Radius"]
    assert radius and all(p.hostnames == ["mock-radius"] for p in radius)


def test_command_lines_are_accepted_by_the_clis() -> None:
    services = compose()["services"]
    server = services["server"]["command"]
    assert server[0] == "mfa-server"
    args = server_cli._parser().parse_args(server[1:])
    assert (args.config, args.host, args.port) == ("/app/docker/server.yaml", "0.0.0.0", 8443)
    mount = services["server"]["volumes"][0].split(":")
    assert (mount[0], mount[1]) == ("./server.yaml", "/app/docker/server.yaml")
    mock = services["mock-radius"]["command"]
    assert mock[0] == "mock-radius"
    parsed = mock_cli._parser().parse_args(mock[1:])
    assert (parsed.port, parsed.control_port, parsed.scenarios) == (1812, 8080, "/app/scenarios")


def test_the_mock_command_line_runs(tmp_path: Path) -> None:
    """The compose command of the mock, with free ports and the repo's scenarios."""
    command = list(compose()["services"]["mock-radius"]["command"][1:])
    for option, value in (("--port", "0"), ("--control-port", "0"),
                          ("--scenarios", str(DOCKER.parent / "scenarios")),
                          ("--host", "127.0.0.1"), ("--control-host", "127.0.0.1")):  # fmt: skip
        command[command.index(option) + 1] = value
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_radius", *command], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        ready = wait_for_json_line(process.stdout, "controlPort")
        assert len(ready["scenarios"]) == 15
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_dockerfile() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)
    assert re.search(r"^USER app$", text, re.M)  # not root
    assert "HEALTHCHECK" in text and "/admin/identity-providers/names" in text
    assert "application/vnd.appgate.peer-v22+json" in text  # the health check passes the 406
    cmd = re.search(r"^CMD (.+)$", text, re.M)
    assert cmd is not None
    argv = yaml.safe_load(cmd.group(1))
    assert argv[0] == "mfa-server"
    server_cli._parser().parse_args(argv[1:])
    for source in ("server", "mock_radius", "scenarios", "pyproject.toml"):
        assert re.search(rf"^COPY {re.escape(source)}\b", text, re.M), source
    # a normal install, as from the wheel (the scenarios are package data), not an editable one
    assert re.search(r"^RUN pip install \. ", text, re.M)
    assert "pip install -e" not in text
