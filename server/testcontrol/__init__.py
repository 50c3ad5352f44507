"""The reference server as a test double for API clients (``server.testControl``): a virtual
clock, scripted faults, known seeds and a request journal, under /_test/.

Off by default; when off, nothing of this package runs on a request. See the README, section
"The server as a test double", and server/test-control.yaml.
"""

from __future__ import annotations

from starlette.middleware import Middleware

from server.testcontrol.control import TestControl
from server.testcontrol.middleware import TestControlMiddleware


def control_middleware(control: TestControl | None) -> list[Middleware]:
    """The middleware to put in front of the application's own, if test control is on."""
    return [] if control is None else [Middleware(TestControlMiddleware, control=control)]


__all__ = ["TestControl", "TestControlMiddleware", "control_middleware"]
