# -*- test-case-name: tests.test_cli, tests.test_process -*-
"""The demo's mock RADIUS server: started once, next to the server, with the shipped scenarios.

The server never imports its test double; it runs ``python -m mock_radius`` as a process and
reads its ready line, with a deadline, so a mock that cannot start costs a clear warning, not a
hang. The mock serves the scenarios shipped with it by default, so the server need not know
where they are installed.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass

from mfa_shared.ready_line import read_ready_line

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


def start_demo_radius(timeout: float = READY_TIMEOUT_SECONDS) -> DemoRadius:
    """``mock-radius serve`` on free ports; raises MockStartError when it does not come up."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_radius", "serve", "--port", "0", "--control-port", "0"],
        stdout=subprocess.PIPE, text=True,  # its stderr is ours: its messages reach the operator
    )  # fmt: skip
    assert process.stdout is not None
    ready = read_ready_line(process.stdout, timeout)
    if ready is None:
        ended = process.poll()
        process.kill()
        process.wait()
        how = f"it exited with status {ended}" if ended is not None else "it was stopped"
        raise MockStartError(f"no ready line within {timeout:g} s ({how}; its messages are above)")
    port, control = ready.get("port"), ready.get("controlPort")
    if not isinstance(port, int) or not isinstance(control, int):
        process.kill()
        raise MockStartError(f"a ready line without ports: {ready}")
    return DemoRadius(process, port, control)
