# -*- test-case-name: tests.test_pytest_plugins, tests.test_test_control -*-
"""mfa-server as a test double for an API client's tests: what the fixtures of the pytest plugin
``pytest_appgate_mfa_server`` (entry point ``pytest11``, name ``mfa_server``) hand to a test.

Each server is a subprocess (``python -m appgate_mfa_server --test-control``) on a free port, in a
folder of its own (database, seed key, log), found from its ready line and stopped with SIGTERM
after the test. The client speaks to /_test/ with urllib, so the plugin needs no HTTP library.
docs/pytest-plugins.md documents every type here; the plugin module imports this one only when
a test uses a fixture.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mfa_shared.ready_line import read_ready_line
from mfa_shared.safe_yaml import load_yaml

READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
Config = dict[str, Any] | str | Path | None


class ControlClient:
    """The /_test/ routes over plain urllib; an error answer fails the test with its body."""

    def __init__(self, base_url: str, context: ssl.SSLContext | None = None) -> None:
        self.base_url = base_url
        self._context = context

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - a URL from the server's ready line
            self.base_url + path, data=data, method=method,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10, context=self._context) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from None
        return json.loads(raw) if raw else None


class Clock:
    """The server's virtual clock: frozen once set, moved only by ``advance``."""

    def __init__(self, control: ControlClient) -> None:
        self._control = control

    def now(self) -> float:
        now: float = self._control.call("GET", "/_test/clock")["now"]
        return now

    def set(self, when: float) -> float:
        """Freeze the server's time at ``when`` (epoch seconds)."""
        now: float = self._control.call("POST", "/_test/clock", {"now": when})["now"]
        return now

    def advance(self, seconds: float) -> float:
        """Move the server's time on by ``seconds`` (from real time, this freezes it)."""
        now: float = self._control.call("POST", "/_test/clock", {"advance": seconds})["now"]
        return now

    def real(self) -> None:
        """Back to real time."""
        self._control.call("POST", "/_test/clock", {"now": None})


class Faults:
    """Scripted answers for the next ``times`` requests matching a method and a path."""

    def __init__(self, control: ControlClient) -> None:
        self._control = control

    def add(
        self,
        method: str,
        path: str,
        *,
        status: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        delay: float | None = None,
        fault: str | None = None,
        times: int = 1,
    ) -> dict[str, Any]:
        """``status`` (with the server's error body unless ``body``), ``delay`` seconds
        before the answer, or ``fault``: ``reset``, ``empty`` or ``garbage``. A ``path`` that
        ends with ``*`` is a prefix; ``method`` ``*`` is any."""
        spec: dict[str, Any] = {"method": method, "path": path, "times": times}
        given = {"status": status, "body": body, "headers": headers, "delay": delay,
                 "fault": fault}  # fmt: skip
        spec.update({key: value for key, value in given.items() if value is not None})
        added: dict[str, Any] = self._control.call("POST", "/_test/faults", spec)
        return added

    def list(self) -> list[dict[str, Any]]:
        """The faults still waiting, with their ``remaining`` counts."""
        faults: list[dict[str, Any]] = self._control.call("GET", "/_test/faults")["faults"]
        return faults

    def remove(self, fault_id: int) -> None:
        self._control.call("DELETE", f"/_test/faults/{fault_id}")

    def clear(self) -> None:
        self._control.call("DELETE", "/_test/faults")


@dataclass
class MfaServer:
    url: str
    host: str
    port: int
    folder: Path
    process: subprocess.Popen[str]
    control: ControlClient
    certificate: Path | None = None  # with tls: the certificate a client must trust
    ready: dict[str, Any] = field(default_factory=dict)  # the ready line, as printed
    clock: Clock = field(init=False)
    faults: Faults = field(init=False)

    def __post_init__(self) -> None:
        self.clock = Clock(self.control)
        self.faults = Faults(self.control)

    def seed(self, dn: str, secret: str | None = None, *, verified: bool = True) -> str:
        """Give the user ``dn`` (``CN=<user>,OU=<identity provider>``) a TOTP seed with a
        known secret (a new random one if None), verified unless told otherwise; returns
        the secret, so the test can compute codes (oathtool, pyotp)."""
        chosen = secret or base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
        path = "/_test/seeds/" + urllib.parse.quote(dn, safe="=,")
        self.control.call("PUT", path, {"secret": chosen, "verified": verified})
        return chosen

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        """The requests the server saw after sequence number ``since``, oldest first."""
        query = urllib.parse.urlencode({"since": since})
        entries: list[dict[str, Any]] = self.control.call("GET", f"/_test/journal?{query}")[
            "entries"
        ]
        return entries

    def clear_journal(self) -> None:
        self.control.call("DELETE", "/_test/journal")

    def reset(self) -> None:
        """As freshly started: no tokens, seeds, lockouts, faults or journal; real time."""
        self.control.call("POST", "/_test/reset")

    def log(self) -> str:
        """What the server wrote on stderr (JSON lines)."""
        return (self.folder / "server.log").read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _config_args(config: Config, folder: Path) -> list[str]:
    """A dict or a file is written into ``folder``, so its relative paths (the database, the
    seed key) land there; None is the embedded demo, with its data in ``folder``."""
    if config is None:
        return ["--data-dir", str(folder), "--no-mock-radius"]
    if not isinstance(config, dict):
        config, _ = load_yaml(Path(config).read_text(encoding="utf-8"), str(config))
    path = folder / "server.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return ["--config", str(path), "--data-dir", str(folder)]


def start_mfa_server(
    config: Config,
    folder: Path,
    *,
    test_control: bool = True,
    tls: bool = False,
    extra_args: tuple[str, ...] = (),
) -> MfaServer:
    """Start ``mfa-server`` on a free port and wait for its ready line (no sleeping)."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "appgate_mfa_server",
        *_config_args(config, folder),
        "--port",
        "0",
    ]
    command += ["--test-control"] if test_control else []
    command += ["--tls"] if tls else []
    env = {k: v for k, v in os.environ.items() if k != "MFA_SERVER_CONFIG"}
    with (folder / "server.log").open("w") as log:
        process = subprocess.Popen(
            [*command, *extra_args], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=log,
            text=True,
        )  # fmt: skip
    assert process.stdout is not None
    ready = read_ready_line(process.stdout, READY_TIMEOUT_SECONDS)
    if ready is None:
        process.kill()
        process.wait()
        message = (folder / "server.log").read_text(errors="replace").strip()
        raise RuntimeError(f"mfa-server did not start: {message[-2000:]}")
    certificate = Path(ready["tlsCertificate"]) if "tlsCertificate" in ready else None
    context = None if certificate is None else ssl.create_default_context(cafile=certificate)
    control = ControlClient(ready["url"], context)
    return MfaServer(ready["url"], ready["host"], ready["port"], folder, process, control,
                     certificate, ready)  # fmt: skip
