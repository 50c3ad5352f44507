"""The demo's mock RADIUS server: started once, next to the server, with the shipped scenarios.

The server never imports its test double; it runs ``python -m mock_radius`` as a process and
reads its ready line, with a deadline, so a mock that cannot start costs a clear warning, not a
hang.
"""

from __future__ import annotations

import json
import logging
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("mfa.server")

READY_TIMEOUT_SECONDS = 20.0


class MockStartError(Exception):
    """The mock did not announce itself; the message says what it printed instead."""


@dataclass
class DemoRadius:
    process: subprocess.Popen[str]
    port: int
    control_port: int

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _read_ready_line(process: subprocess.Popen[str], timeout: float) -> dict[str, object]:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                break
            line = process.stdout.readline()
            if not line:  # the process ended
                break
            try:
                ready = json.loads(line)
            except ValueError:
                continue
            if isinstance(ready, dict) and ready.get("event") == "ready":
                return ready
    finally:
        selector.close()
    ended = process.poll()
    process.kill()
    process.wait()
    how = f"it exited with status {ended}" if ended is not None else "it was stopped"
    raise MockStartError(f"no ready line within {timeout:g} s ({how}; its messages are above)")


def start_demo_radius(scenarios: Path, timeout: float = READY_TIMEOUT_SECONDS) -> DemoRadius:
    """``mock-radius serve`` on free ports; raises MockStartError when it does not come up."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "mock_radius", "serve", "--scenarios", str(scenarios),
         "--port", "0", "--control-port", "0"],
        stdout=subprocess.PIPE, text=True,  # its stderr is ours: its messages reach the operator
    )  # fmt: skip
    ready = _read_ready_line(process, timeout)
    port, control = ready.get("port"), ready.get("controlPort")
    if not isinstance(port, int) or not isinstance(control, int):
        process.kill()
        raise MockStartError(f"a ready line without ports: {ready}")
    return DemoRadius(process, port, control)
