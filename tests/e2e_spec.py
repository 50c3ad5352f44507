"""The ``endToEnd`` block of a scenario file: the HTTP exchange the scenario should produce
through the reference server, and what the mock should have received. Read by
tests/test_e2e_radius.py; the mock itself ignores the block.

Timing: ``minSeconds`` is a plain lower bound (a reply cannot come before its scripted delay).
``maxSeconds`` is compared with a reference measured in the same run, not taken as absolute:
a call may take ``maxSeconds`` plus ``SLACK`` times the time the case's own login took, so a
loaded machine stretches the bound as much as it stretches the server.

``{call: login}`` logs in again (a new token, a new RADIUS exchange), so a case can show that
a second login behaves like the first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from tests.conftest import ACCEPT

SLACK = 10.0
PATHS = {
    "login": ("POST", "/admin/authentication"),
    "initialize": ("POST", "/admin/authentication/otp/initialize"),
    "otp": ("POST", "/admin/authentication/otp"),
    "authorization": ("GET", "/admin/authorization"),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Call(_Model):
    call: Literal["login", "initialize", "otp", "authorization"]
    body: dict[str, Any] | None = None
    status: int = 200
    json_: dict[str, Any] = Field(default_factory=dict, alias="json")
    has: list[str] = []
    lacks: list[str] = []
    minSeconds: float | None = None
    maxSeconds: float | None = None


class JournalEntry(_Model):
    step: str | None = None
    outcome: str | None = None
    authType: str | None = None
    stateEchoed: bool = False
    datagrams: int | None = None  # how many copies of the reply the mock sent


class Case(_Model):
    name: str
    calls: list[Call]
    journal: list[JournalEntry]
    retransmissions: int = 0


class EndToEnd(_Model):
    provider: dict[str, Any]
    user: str
    password: str
    cases: list[Case]


def subset(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected``: dicts may hold more keys, lists must match."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or '(body)'}: expected an object, got {actual!r}"]
        problems: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{path}{key}: missing")
            else:
                problems += subset(value, actual[key], f"{path}{key}.")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {expected!r}, got {actual!r}"]
        return [p for e, a in zip(expected, actual, strict=True) for p in subset(e, a, path)]
    if expected != actual:
        return [f"{path.rstrip('.')}: expected {expected!r}, got {actual!r}"]
    return []


def _substitute(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, replacement in variables.items():
            value = value.replace(f"${name}", replacement)
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    return value


def run_calls(
    client: httpx.Client,
    url: str,
    login: Callable[[], tuple[str, float]],
    case: Case,
    variables: dict[str, str],
) -> list[str]:
    """Log in, perform the calls; return every difference from what the case expects."""
    problems: list[str] = []
    token, reference = login()
    for index, call in enumerate(case.calls):
        where = f"call {index + 1} ({call.call})"
        if call.call == "login":
            token, reference = login()
            variables.pop("state", None)
            continue
        method, path = PATHS[call.call]
        body = _substitute(call.body, variables)
        started = time.monotonic()
        response = client.request(
            method,
            url + path,
            headers={**ACCEPT, "Authorization": f"Bearer {token}"},
            json=body,
        )
        elapsed = time.monotonic() - started
        if response.status_code != call.status:
            problems.append(f"{where}: status {response.status_code}, expected {call.status}: "
                            f"{response.text}")  # fmt: skip
            break
        data = response.json() if response.content else {}
        problems += [f"{where}: {p}" for p in subset(_substitute(call.json_, variables), data)]
        problems += [f"{where}: {k} missing" for k in call.has if k not in data]
        problems += [f"{where}: {k} should be absent" for k in call.lacks if k in data]
        if call.minSeconds is not None and elapsed < call.minSeconds:
            problems.append(f"{where}: answered after {elapsed:.2f} s, before {call.minSeconds}")
        if call.maxSeconds is not None and elapsed > call.maxSeconds + SLACK * reference:
            problems.append(
                f"{where}: answered after {elapsed:.2f} s, more than {call.maxSeconds} s + "
                f"{SLACK:g} x the login's {reference:.3f} s"
            )
        if "state" in data:
            variables["state"] = data["state"]
        if "token" in data:
            token = data["token"]
    return problems


def is_first_transmission(entry: dict[str, Any]) -> bool:
    """Not a retransmission: neither one the duplicate cache answered or discarded, nor one
    that went to the script again because a drop lost the transmission before it."""
    return not entry["outcome"].startswith("retransmission") and entry.get("transmission", 1) == 1


def check_journal(entries: list[dict[str, Any]], case: Case) -> list[str]:
    """What the server really sent, as the mock saw it."""
    problems: list[str] = []
    fresh = [e for e in entries if is_first_transmission(e)]
    retransmissions = len(entries) - len(fresh)
    if retransmissions < case.retransmissions:
        problems.append(
            f"journal: {retransmissions} retransmissions, expected {case.retransmissions}"
        )
    if len(fresh) != len(case.journal):
        steps = [(e.get("step"), e["outcome"]) for e in fresh]
        return [*problems, f"journal: {len(fresh)} requests {steps}, expected {len(case.journal)}"]
    previous_state: str | None = None
    for index, (entry, expected) in enumerate(zip(fresh, case.journal, strict=True)):
        where = f"journal {index + 1}"
        if entry.get("messageAuthenticator") != "valid":
            problems.append(f"{where}: Message-Authenticator {entry.get('messageAuthenticator')}")
        if "NAS-Identifier" not in entry.get("attributes", {}):
            problems.append(f"{where}: no NAS-Identifier")
        if expected.step is not None and entry.get("step") != expected.step:
            problems.append(f"{where}: step {entry.get('step')!r}, expected {expected.step!r} "
                            f"({entry.get('nearMiss')})")  # fmt: skip
        if expected.outcome is not None and entry["outcome"] != expected.outcome:
            problems.append(f"{where}: outcome {entry['outcome']}, expected {expected.outcome}")
        if expected.authType is not None and entry.get("authType") != expected.authType:
            problems.append(f"{where}: authType {entry.get('authType')}")
        sent_state = entry.get("attributes", {}).get("State", [None])[0]
        if expected.stateEchoed and (previous_state is None or sent_state != previous_state):
            problems.append(f"{where}: State {sent_state} is not the one issued ({previous_state})")
        if not expected.stateEchoed and sent_state is not None:
            problems.append(f"{where}: unexpected State {sent_state}")
        reply = entry.get("reply") or {}
        if expected.datagrams is not None and reply.get("datagrams") != expected.datagrams:
            problems.append(f"{where}: {reply.get('datagrams')} reply datagrams, expected "
                            f"{expected.datagrams}")  # fmt: skip
        previous_state = reply.get("attributes", {}).get("State", [None])[0]
    return problems
