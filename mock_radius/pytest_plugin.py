# -*- test-case-name: tests.test_pytest_plugins, tests.test_mock_server -*-
"""The mock RADIUS server in a test: what the fixtures of the pytest plugin ``pytest_mock_radius``
(entry point ``pytest11``, name ``mock_radius``) hand to a test.

Each mock is ``mock-radius serve`` as a subprocess on free ports, found from its ready line and
stopped with SIGTERM after the test; its control API is spoken with urllib, so the plugin needs
no HTTP library. docs/pytest-plugins.md documents every type here; the plugin module imports
this one only when a test uses a fixture.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mock_radius_scenarios import locate

from mfa_shared.ready_line import read_ready_line
from mock_radius.scenario import load_scenarios

READY_TIMEOUT_SECONDS = 20.0


class ControlClient:
    """The control API over plain urllib, so the plugin needs no HTTP library."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        request = urllib.request.Request(  # noqa: S310 - loopback URL built here
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from None

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/health")
        return result

    def scenarios(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/scenarios")
        return result

    def sessions(self, limit: int = 100) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/sessions?limit={limit}")
        return result

    def activate(self, scenario: str | None, user: str | None = None) -> None:
        self._call("POST", "/activate", {"scenario": scenario, "user": user})

    def reset(self, user: str | None = None) -> None:
        self._call("POST", "/reset", {"user": user})

    def journal(
        self,
        user: str | None = None,
        since: int = 0,
        limit: int | None = None,
        **filters: str | float | list[str],
    ) -> list[dict[str, Any]]:
        """Entries after ``since``, oldest first: all of them (page by page), or ``limit``.
        ``filters``: outcome, step, scenario (a value or a list), from, to (epoch seconds)."""
        entries: list[dict[str, Any]] = []
        while True:
            page = self.journal_page(user, since, limit, **filters)
            entries += page["entries"]
            if not page["more"] or (limit is not None and len(entries) >= limit):
                return entries[:limit] if limit is not None else entries
            since = page["next"]

    def journal_page(
        self,
        user: str | None = None,
        since: int = 0,
        limit: int | None = None,
        **filters: str | float | list[str],
    ) -> dict[str, Any]:
        query: list[tuple[str, str]] = [("since", str(since))]
        if user is not None:
            query.append(("user", user))
        if limit is not None:
            query.append(("limit", str(limit)))
        for name, value in filters.items():
            values = value if isinstance(value, list) else [value]
            query += [(name.rstrip("_"), str(v)) for v in values]  # from_: from
        result: dict[str, Any] = self._call("GET", "/journal?" + urllib.parse.urlencode(query))
        return result

    def clear_journal(self) -> None:
        self._call("DELETE", "/journal")


class _Drain:
    """Reads a process's output in the background and keeps the last lines: a pipe nobody
    reads fills up and would stop the mock at its next line of output."""

    def __init__(self, stream: IO[str], keep: int = 1000) -> None:
        self.lines: deque[str] = deque(maxlen=keep)
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


@dataclass
class MockRadius:
    host: str
    port: int
    control_port: int
    secret: str
    process: subprocess.Popen[str]
    control: ControlClient
    acct_port: int | None = None
    _output: list[_Drain] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def acct_address(self) -> tuple[str, int]:
        assert self.acct_port is not None, "started with --acct-port none"
        return (self.host, self.acct_port)

    def output(self) -> list[str]:
        """The last lines the mock printed after its ready line (stdout, then stderr)."""
        return [line for drain in self._output for line in drain.lines]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for drain in self._output:
            drain.join(5)
        return self.process.returncode


def start_mock_radius(
    scenarios: str | Path | None = None,
    *,
    scenario: str | None = None,
    time_scale: float = 1.0,
    extra_args: tuple[str, ...] = (),
) -> MockRadius:
    """Start ``mock-radius serve`` on free ports and wait for its ready line (no sleeping)."""
    location = locate(scenarios)
    loaded = load_scenarios(location)
    chosen = next((s for s in loaded if s.name == scenario), loaded[0])
    command = [
        sys.executable, "-m", "mock_radius", "serve",
        "--scenarios", str(location), "--port", "0", "--control-port", "0",
        "--time-scale", str(time_scale), *extra_args,
    ]  # fmt: skip
    if scenario is not None:
        command += ["--scenario", scenario]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    ready = read_ready_line(process.stdout, READY_TIMEOUT_SECONDS)
    if ready is None:
        process.kill()
        _, err = process.communicate()
        raise RuntimeError(f"mock-radius did not start: {err.strip()}")
    control = ControlClient(f"http://127.0.0.1:{ready['controlPort']}")
    return MockRadius(
        ready["host"], ready["port"], ready["controlPort"], chosen.secret, process,
        control, ready.get("acctPort"), [_Drain(process.stdout), _Drain(process.stderr)],
    )  # fmt: skip
