"""Shared fixtures: settings in a temp folder, an injectable clock, and the app served over real
HTTP by uvicorn on a loopback port."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from appgate_mfa_server.app import create_app
from appgate_mfa_server.config import Settings, parse_settings
from mfa_shared.ready_line import read_json_line, read_ready_line
from mock_radius.pytest_plugin import MockRadius, start_mock_radius
from tests.browser import browser  # noqa: F401 - the fixture, for the browser pages' tests

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"  # the shipped scenarios, as the checkout has them
ACCEPT = {"Accept": "application/vnd.appgate.peer-v22+json"}
DEVICE_ID = "4c07bc67-57ea-42dd-b702-c2d6c45419fc"
START_TIME = 1_800_000_000.0  # a whole multiple of 30: step boundaries are easy to reason about


def pytest_configure(config: pytest.Config) -> None:
    """The plugins' fixtures come with the package's pytest11 entry points; an install made
    before they pointed at these modules lacks them, so register them here as well."""
    import pytest_appgate_mfa_server
    import pytest_mock_radius

    for plugin in (pytest_appgate_mfa_server, pytest_mock_radius):
        if not config.pluginmanager.is_registered(plugin):
            config.pluginmanager.register(plugin)


class FakeClock:
    def __init__(self, now: float = START_TIME) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def radius_provider(name: str, port: int, **settings: Any) -> dict[str, Any]:
    """A Radius MFA provider of a test configuration, asking a RADIUS server on loopback
    ``port`` with the shipped scenarios' secret; ``settings`` add to it or override it."""
    return {"name": name, "type": "Radius", "hostnames": ["127.0.0.1"], "port": port,
            "sharedSecret": "testing123", "timeout": 6, **settings}  # fmt: skip


def base_config(tmp: Path) -> dict[str, Any]:
    return {
        "server": {"hostname": "controller.test", "issuer": "Appgate SDP", "tokenLifetime": "1h"},
        "storage": {"url": "sqlite:///./mfa.db", "encryptionKeyFile": "./seed.key"},
        "identityProviders": [
            {
                "name": "local",
                "type": "Credentials",
                "mfaProvider": "builtin",
                "users": [
                    {"username": "alice", "password": "alice-pass"},
                    {"username": "dave", "password": "dave-pass"},
                    {"username": "erin", "password": "erin-pass", "admin": True},
                ],
            },
            {
                "name": "service",
                "type": "Credentials",
                "users": [
                    {"username": "bob", "password": "bob-pass"},
                    {"username": "root", "password": "root-pass", "admin": True},
                ],
            },
        ],
        "mfaProviders": [
            {
                "name": "builtin",
                "type": "DefaultTimeBased",
                "lockout": {"maxFailedAttempts": 5, "cooldown": "60s", "maxCooldown": "10m"},
            }
        ],
    }


def settings_from(config: dict[str, Any], folder: Path) -> Settings:
    return parse_settings(yaml.safe_dump(config), "test config", folder)


def free_listening_socket() -> socket.socket:
    """A bound, listening socket: connections queue in its backlog until uvicorn accepts them,
    so nobody has to wait for the server to be ready."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@dataclass
class LiveServer:
    url: str
    clock: FakeClock
    settings: Settings
    client: httpx.Client
    app: Any = None
    _extra: dict[str, Any] = field(default_factory=dict)

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        sent = dict(ACCEPT)
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        return self.client.request(
            method, self.url + path, json=json, headers=sent, content=content
        )

    def login(self, username: str, password: str, provider: str = "local") -> dict[str, Any]:
        response = self.call(
            "POST",
            "/admin/authentication",
            json={
                "providerName": provider,
                "username": username,
                "password": password,
                "deviceId": DEVICE_ID,
            },
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def initialize(self, token: str, body: Any = None) -> httpx.Response:
        return self.call("POST", "/admin/authentication/otp/initialize", token=token, json=body)

    def otp(self, token: str, code: str) -> httpx.Response:
        return self.call("POST", "/admin/authentication/otp", token=token, json={"otp": code})


def serve_in_thread(app: Any) -> tuple[str, uvicorn.Server, threading.Thread]:
    sock = free_listening_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{port}", server, thread


class _Lines:
    """Where the log lines of in-process servers go during the tests (a server process writes
    to its own stderr): kept, not printed between pytest's captures."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(data)
        del self.chunks[:-1000]
        return len(data)

    def flush(self) -> None:
        pass


@pytest.fixture(autouse=True, scope="session")
def _quiet_in_process_logs() -> Iterator[_Lines]:
    from appgate_mfa_server import logs

    lines = _Lines()
    previous, logs.SINK._stream = logs.SINK._stream, lines  # type: ignore[assignment]
    yield lines
    logs.SINK._stream = previous


MOCK_TIME_SCALE = 0.1  # the module mock's, unless its marker says otherwise


@pytest.fixture(scope="module")
def mock(request: pytest.FixtureRequest) -> Iterator[MockRadius]:
    """One ``mock-radius serve`` process for the whole test module, with every scenario of
    SCENARIOS and the time scale MOCK_TIME_SCALE. A module that needs others writes the marker
    of the plugin's mock_radius fixture (the same arguments) for all its tests, e.g.
    ``pytestmark = pytest.mark.mock_radius(time_scale=0.5, extra_args=("--mismatch-hint",))``.
    Tests share it: each resets the users it drives. It must stop cleanly at the module's end."""
    marker = request.node.get_closest_marker("mock_radius")
    args, options = (marker.args, marker.kwargs) if marker is not None else ((), {})
    server = start_mock_radius(*(args or (SCENARIOS,)), **{"time_scale": MOCK_TIME_SCALE,
                                                           **options})  # fmt: skip
    yield server
    assert server.stop() == 0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    return base_config(tmp_path)


@pytest.fixture
def live(tmp_path: Path, clock: FakeClock, config: dict[str, Any]) -> Iterator[LiveServer]:
    settings = settings_from(config, tmp_path)
    app = create_app(settings, clock=clock)
    url, server, thread = serve_in_thread(app)
    with httpx.Client(timeout=10) as client:
        yield LiveServer(url, clock, settings, client, app)
    server.should_exit = True
    thread.join(timeout=10)


def totp_now(secret: str, when: float) -> str:
    """A code from oathtool, an implementation independent of the server's."""
    import subprocess

    return subprocess.run(
        ["oathtool", "--totp", "--base32", f"--now=@{int(when)}", secret],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def rss_kib(pid: int) -> int:
    """The resident memory of a process, in KiB (VmRSS of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def wait_for_json_line(stream: Any, key: str, timeout: float = 15.0) -> dict[str, Any]:
    """Read lines until one is a JSON object holding ``key``; fails rather than hangs."""
    found = read_json_line(stream, lambda line: key in line, timeout)
    if found is None:
        raise AssertionError(f"no JSON line with {key!r} within {timeout}s")
    return found


def wait_for_ready_line(stream: Any, timeout: float = 15.0) -> dict[str, Any]:
    """The ready line of mfa-server or mock-radius; fails rather than hangs."""
    found = read_ready_line(stream, timeout)
    if found is None:
        raise AssertionError(f"no ready line within {timeout}s")
    return found


class ServerLog:
    """Everything a server process writes on stderr, drained by a thread as it comes (a busy
    server would otherwise block on a full pipe), as text and as parsed JSON lines."""

    def __init__(self, stream: Any) -> None:
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: Any) -> None:
        for line in stream:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def text(self, wait: bool = True) -> str:
        """All of it; with ``wait``, once the process has closed its stderr."""
        if wait:
            self._thread.join(timeout=15)
        with self._changed:
            return "".join(self._lines)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        import json

        found = []
        for line in self.text(wait=False).splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and (name is None or data.get("event") == name):
                found.append(data)
        return found

    def wait_for(self, event: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.events(event)
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0 or self._done:
                    raise AssertionError(f"no {event} event on stderr")
                self._changed.wait(left)

    def wait_for_message(self, message: str, timeout: float = 15.0) -> None:
        """Until a log line has this ``message`` (uvicorn's own lines carry no event)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(e.get("message") == message for e in self.events()):
                left = deadline - time.monotonic()
                if left <= 0 or self._done:
                    raise AssertionError(f"no log line {message!r} on stderr")
                self._changed.wait(left)


class ServerProcess(subprocess.Popen[str]):
    log: ServerLog


@contextmanager
def mfa_server(
    args: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    open_files: tuple[int, int] | None = None,
) -> Iterator[tuple[str, ServerProcess, dict[str, Any]]]:
    """A real `mfa-server` process on a free port: (url, process, its ready line). Stopped
    with SIGTERM; ``process.log`` holds what it wrote on stderr. ``open_files``: the (soft,
    hard) limit on open files it starts with."""
    import resource
    import signal
    import sys

    def limit_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, open_files)

    process = ServerProcess(
        [sys.executable, "-m", "appgate_mfa_server", *args, "--port", "0"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit_files if open_files is not None else None,
    )
    process.log = ServerLog(process.stderr)
    try:
        assert process.stdout is not None
        ready = wait_for_ready_line(process.stdout)
        yield ready["url"], process, ready
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


def config_args(folder: Path, **server: Any) -> list[str]:
    """``--config FILE`` for ``base_config`` with these ``server`` settings, written into
    ``folder`` (so the database and the seed key land there too)."""
    config = base_config(folder)
    config["server"].update(server)
    path = folder / "server.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["--config", str(path)]


@contextmanager
def server_process(
    config: dict[str, Any], folder: Path, name: str = "server.yaml"
) -> Iterator[str]:
    """`mfa-server` with ``config`` written into ``folder``; yields its URL."""
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    with mfa_server(["--config", str(path)]) as (url, _process, _ready):
        yield url


def http_login(client: Any, url: str, provider: str, user: str, password: str) -> str:
    """A partial token over real HTTP; ``client`` is an httpx.Client or the httpx module."""
    response = client.post(
        url + "/admin/authentication",
        headers=ACCEPT,
        json={"providerName": provider, "username": user, "password": password,
              "deviceId": DEVICE_ID},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def http_call(client: Any, url: str, path: str, token: str, body: Any = None) -> httpx.Response:
    """A call with a bearer token: GET for /admin/authorization, POST otherwise."""
    method = "GET" if path == "/admin/authorization" else "POST"
    response: httpx.Response = client.request(
        method, url + path, headers={**ACCEPT, "Authorization": f"Bearer {token}"}, json=body
    )
    return response


# PostgreSQL: a server started by .ci/run (MFA_TEST_POSTGRES_URL), else one started here with
# .ci/start-postgres (the Debian package must be installed); each test gets its own database.


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    import os
    import shutil
    import subprocess

    url = os.environ.get("MFA_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    started = subprocess.run(
        ["bash", str(REPO / ".ci" / "start-postgres")], capture_output=True, text=True
    )
    if started.returncode != 0:
        pytest.fail(
            f"the PostgreSQL tests need a server: {started.stderr.strip()} "
            "(bash .ci/run installs it; or set MFA_TEST_POSTGRES_URL)"
        )
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
    )
    yield exports["MFA_TEST_POSTGRES_URL"]
    stop = [f"{exports['MFA_TEST_POSTGRES_BIN']}/pg_ctl", "-D",
            exports["MFA_TEST_POSTGRES_DATA"], "-m", "immediate", "stop"]  # fmt: skip
    if os.getuid() == 0:
        stop = ["runuser", "-u", "postgres", "--", *stop]
    subprocess.run(stop, capture_output=True)
    shutil.rmtree(Path(exports["MFA_TEST_POSTGRES_DATA"]).parent, ignore_errors=True)  # ~55 MB


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
