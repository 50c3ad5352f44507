"""docker/ cannot be built here (no Docker engine), so check what can be checked: the compose
file parses and wires the services, every command line is one our CLIs accept, the server's
configuration in it is valid and has the demo's users, and the image's health check script
answers for real server and mock processes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from appgate_mfa_server import __main__ as server_cli
from appgate_mfa_server.config import RadiusProvider, Settings, demo_settings, load_settings
from mock_radius import cli as mock_cli
from tests.conftest import wait_for_ready_line
from tests.programs import command as program_command
from tests.programs import launcher

DOCKER = Path(__file__).resolve().parent.parent / "docker"
HEALTHCHECK = DOCKER / "healthcheck.py"


def compose() -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_wires_server_mock_and_postgres() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "mock-radius", "server"}
    assert {name: s.get("restart") for name, s in services.items()} == dict.fromkeys(
        services, "unless-stopped"
    )
    assert "healthcheck" not in services["mock-radius"]  # the image's own check serves both
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
    assert (parsed.port, parsed.control_port, parsed.scenarios) == (1812, 8080, None)  # shipped


def test_the_mock_command_line_runs(tmp_path: Path) -> None:
    """The compose command of the mock, with free ports (and the shipped scenarios)."""
    command = list(compose()["services"]["mock-radius"]["command"][1:])
    for option, value in (("--port", "0"), ("--control-port", "0"), ("--host", "127.0.0.1"),
                          ("--control-host", "127.0.0.1")):  # fmt: skip
        command[command.index(option) + 1] = value
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_radius", *command], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        ready = wait_for_ready_line(process.stdout)
        assert len(ready["scenarios"]) == 15
    finally:
        process.terminate()
        assert process.wait(10) == 0


def _package_folders() -> set[str]:
    """The folder of every top-level package pyproject.toml installs: ``pip install .`` in the
    image fails on one that was not copied."""
    setuptools = tomllib.loads((DOCKER.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = setuptools.get("package-dir", {})
    return {folders.get(name, name) for name in setuptools["packages"] if "." not in name}


def test_dockerfile() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)
    assert re.search(r"^USER app$", text, re.M)  # not root
    health = re.search(r"^HEALTHCHECK .*\\\n\s+CMD (.+)$", text, re.M)
    assert health is not None
    assert yaml.safe_load(health.group(1)) == ["python", "/app/healthcheck.py"]
    assert re.search(r"^COPY docker/healthcheck\.py \./healthcheck\.py$", text, re.M)
    assert "MFA_PORT" not in text  # read by nothing
    cmd = re.search(r"^CMD (.+)$", text, re.M)
    assert cmd is not None
    argv = yaml.safe_load(cmd.group(1))
    assert argv[0] == "mfa-server"
    server_cli._parser().parse_args(argv[1:])
    assert re.search(r"^COPY pyproject\.toml ", text, re.M)
    for folder in _package_folders():
        assert re.search(rf"^COPY {re.escape(folder)} \./{re.escape(folder)}$", text, re.M), folder
    # a normal install, as from the wheel (the scenarios are package data), not an editable one
    assert re.search(r"^RUN pip install \. ", text, re.M)
    assert "pip install -e" not in text


def _users(settings: Settings) -> dict[str, list[tuple[str, str | None, bool]]]:
    return {
        idp.name: [(u.username, u.password, u.admin) for u in idp.users]
        for idp in settings.identity_providers
    }


def _radius(settings: Settings) -> dict[str, dict[str, object]]:
    """What a RADIUS provider does, without where its server is."""
    where = {"hostnames", "port"}
    return {
        p.name: p.model_dump(exclude=where)
        for p in settings.mfa_providers
        if isinstance(p, RadiusProvider)
    }


def test_the_compose_server_has_every_demo_user(tmp_path: Path) -> None:
    """The README's table of demo users holds in the compose stack too."""
    docker, demo = load_settings(DOCKER / "server.yaml"), demo_settings(tmp_path)
    assert _users(docker) == _users(demo)
    assert {"tina", "rex", "pete"} <= {u for users in _users(docker).values() for u, _, _ in users}
    assert _radius(docker) == _radius(demo)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _check(pid: int) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, str(HEALTHCHECK), str(pid)], capture_output=True, text=True, timeout=30
    )
    return result.returncode, result.stdout.strip()


@contextmanager
def _process(argv: list[str], ready: bool, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)  # fmt: skip
    try:
        if ready:
            assert process.stdout is not None
            wait_for_ready_line(process.stdout, timeout=30)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_the_health_check_asks_the_server_on_its_port(tmp_path: Path, tls: bool) -> None:
    port = _free_port()
    argv = [*launcher("mfa-server", tmp_path), "--host", "127.0.0.1", "--port", str(port),
            "--no-mock-radius", "--data-dir", str(tmp_path)]  # fmt: skip
    argv += ["--tls"] if tls else []
    with _process(argv, True, tmp_path) as server:
        status, said = _check(server.pid)
        assert status == 0, said
        scheme = "https" if tls else "http"
        assert said == (
            f"mfa-server answers at {scheme}://127.0.0.1:{port}/admin/identity-providers/names"
        )


@pytest.mark.slow
def test_the_health_check_asks_the_mock_its_control_api(tmp_path: Path) -> None:
    port = _free_port()
    mock_radius = launcher("mock-radius", tmp_path)
    argv = [*mock_radius, "serve", "--port", "0", "--control-port", str(port)]
    with _process(argv, True, tmp_path) as mock:
        assert _check(mock.pid) == (0, f"mock-radius answers at http://127.0.0.1:{port}/health")
    unchecked = [*mock_radius, "serve", "--port", "0"]
    with _process(unchecked, True, tmp_path) as mock:
        status, said = _check(mock.pid)
    assert status == 1
    assert said == "mock-radius serve without --control-port: its control API is on a free port"


def test_the_health_check_fails_when_nobody_answers(tmp_path: Path) -> None:
    """A process whose command line says mfa-server on a port where nothing listens."""
    port = _free_port()
    sleeper = [
        sys.executable,
        "-c",
        "import time; time.sleep(60)",
        "mfa-server",
        "--port",
        str(port),
    ]
    with _process(sleeper, False, tmp_path) as process:
        status, said = _check(process.pid)
    assert status == 1
    assert said.startswith(f"http://127.0.0.1:{port}/admin/identity-providers/names: ")
    assert f"; https://127.0.0.1:{port}/" in said
    short = [sys.executable, "-c", "import time; time.sleep(60)", "mock-radius", "validate", "x"]
    with _process(short, False, tmp_path) as process:
        assert _check(process.pid) == (0, "mock-radius validate runs briefly: nothing to check")


def test_a_data_folder_the_server_may_not_write_is_a_clear_refusal(tmp_path: Path) -> None:
    """The bind-mounted data folder of another uid (the README's Docker notes): a message and
    status 2, no traceback. The server runs in a user namespace as uid 10001, without root's
    right to write anywhere; the key's folder is read-only, the database's is not."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("this test needs unshare (util-linux)")
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o555)
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({
        "storage": {"url": f"sqlite:///{tmp_path}/mfa.db", "encryptionKeyFile": f"{data}/seed.key"},
        "identityProviders": [{"name": "local", "users": [{"username": "a", "password": "b"}]}],
    }))  # fmt: skip
    result = subprocess.run(
        [unshare, "--user", "--map-user=10001", "--map-group=10001", *program_command("mfa-server"),
         "--config", str(config), "--port", "0"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"mfa-server: {data}/seed.key: cannot create the seed encryption key: Permission "
        "denied; the folder must be writable by this process's user (uid 10001)\n"
    )
