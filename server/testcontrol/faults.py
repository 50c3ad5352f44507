# -*- test-case-name: tests.test_test_control, tests.test_test_control_units -*-
"""Scripted answers: the next ``times`` requests that match a method and a path get a status
(with the server's error shape unless a body is given), a delay before the real answer, or a
broken connection instead of any answer.

Faults wait in the order they were added; a request takes the first that matches, and a fault
whose count is used up goes. Their number is capped, since a client can add them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StrictInt, StrictStr

from appgate_mfa_server import errors
from appgate_mfa_server.errors import FieldError
from appgate_mfa_server.schemas import RequestBody

MAX_FAULTS = 100
MAX_DELAY_SECONDS = 60.0
MAX_HEADERS = 20
_METHOD = re.compile(r"^[A-Za-z]{1,16}$|^\*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]{0,1024}$")
_FRAMING = {"content-length", "transfer-encoding", "connection"}  # the server's to write
NO_BODY = (204, 304)


class ConnectionFault(StrEnum):
    """How a fault breaks the connection instead of answering."""

    RESET = "reset"  # a TCP reset
    EMPTY = "empty"  # closed without an answer
    GARBAGE = "garbage"  # random bytes that are no HTTP, then closed


class FaultRequest(RequestBody):
    """The body of POST /_test/faults; unknown fields are errors here (a typo would otherwise
    script something else than meant)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Annotated[StrictStr, Field(min_length=1, max_length=16)]
    path: Annotated[StrictStr, Field(min_length=1, max_length=1024)]
    status: Annotated[StrictInt, Field(ge=200, le=599)] | None = None
    body: Any = None
    headers: Annotated[dict[StrictStr, StrictStr], Field(max_length=MAX_HEADERS)] | None = None
    delay: Annotated[float, Field(strict=True, gt=0, le=MAX_DELAY_SECONDS)] | None = None
    fault: ConnectionFault | None = None
    times: Annotated[StrictInt, Field(ge=1, le=100_000)] = 1


@dataclass
class Fault:
    id: int
    method: str  # upper case, or "*"
    path: str  # exact, or a prefix when it ends with "*"
    status: int | None
    body: Any
    headers: dict[str, str]
    delay: float | None
    fault: ConnectionFault | None
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "method": self.method, "path": self.path, "status": self.status,
            "body": self.body, "headers": self.headers, "delay": self.delay, "fault": self.fault,
            "remaining": self.remaining,
        }  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """What the fault did, for the journal."""
        done = {"status": self.status, "delay": self.delay, "fault": self.fault}
        return {"id": self.id, **{k: v for k, v in done.items() if v is not None}}


def problems(request: FaultRequest) -> list[FieldError]:
    """What the field types cannot say: the method and path patterns, and which fields go
    together."""
    found: list[FieldError] = []
    if not _METHOD.match(request.method):
        found.append(FieldError("method", "must be an HTTP method such as POST, or *"))
    if not request.path.startswith("/") or "*" in request.path[:-1]:
        found.append(FieldError("path", "must start with / and may end with * (a prefix)"))
    elif request.path.startswith("/_test"):
        found.append(FieldError("path", "the test control's own routes cannot be faulted"))
    if request.status is None and request.delay is None and request.fault is None:
        found.append(FieldError("status", "give status, delay or fault"))
    found += _answer_problems(request)
    for name, value in (request.headers or {}).items():
        if not _HEADER_NAME.match(name) or name.lower() in _FRAMING:
            found.append(FieldError(f"headers.{name}", "not a header name a fault may set"))
        elif not _HEADER_VALUE.match(value):
            found.append(FieldError(f"headers.{name}", "must be printable ASCII, one line"))
    return found


def _answer_problems(request: FaultRequest) -> list[FieldError]:
    """A broken connection answers nothing; a status has a body where HTTP gives it one."""
    extras = request.body is not None or request.headers is not None
    if request.fault is not None:
        if request.status is not None or extras:
            return [FieldError("fault", "a broken connection has no status, body or headers")]
    elif request.status is None:
        if extras:
            return [FieldError("status", "body and headers need a status")]
    elif request.status in NO_BODY:
        if request.body is not None:
            return [FieldError("body", f"a {request.status} answer has no body")]
    elif request.status < 400 and request.body is None:
        return [FieldError("body", "a status below 400 needs a body")]
    return []


@dataclass
class FaultBook:
    _faults: list[Fault] = field(default_factory=list)
    _last_id: int = 0

    def add(self, request: FaultRequest) -> Fault:
        found = problems(request)
        if found:
            raise errors.validation_error(found)
        if len(self._faults) >= MAX_FAULTS:
            raise errors.conflict(f"{MAX_FAULTS} faults are waiting already; delete some first.")
        self._last_id += 1
        fault = Fault(
            self._last_id, request.method.upper(), request.path, request.status, request.body,
            dict(request.headers or {}), request.delay, request.fault, request.times,
        )  # fmt: skip
        self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The fault that answers this request, counted; None for a real answer."""
        for fault in self._faults:
            if fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def views(self) -> list[dict[str, Any]]:
        return [fault.view() for fault in self._faults]

    def remove(self, fault_id: int) -> bool:
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) < before

    def clear(self) -> None:
        self._faults.clear()
