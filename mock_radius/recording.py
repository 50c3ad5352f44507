"""Recorded RADIUS exchanges -> a scenario file that replays them (shared by ``record`` and
``import``). No Twisted here.

Each exchange becomes one step, used once (``times: 1``), in order: it matches the user, the
password (a salted hash of a PAP password by default; for CHAP, which never reveals the
password, the exact recorded CHAP-Password and challenge), and the State (``issued`` when the
request echoed the State of this user's previous reply, so State chains replay), and it answers
with the recorded code and attributes, the recorded State bytes included. An exchange that got
no answer becomes a ``drop``. When a client sent a request without a Message-Authenticator, the
scenario says ``requireMessageAuthenticator: false``, so what was answered is answered again.
The file is written next to its target and renamed into place only when complete, so a partial
file is never mistaken for a finished one.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mock_radius.matching import hash_password
from mock_radius.scenario import parse_scenario

_NOT_RECORDED = {"Message-Authenticator", "Proxy-State"}


@dataclass
class Exchange:
    user: str | None
    auth_type: str | None  # PAP, CHAP or None
    clear_password: str | None
    state: bytes | None  # the State the request carried
    at: float  # when the request was seen (epoch seconds)
    reply_code: str | None = None  # None: no answer
    reply_attributes: dict[str, list[str | int | bytes]] = field(default_factory=dict)
    delay: float = 0.0
    message_authenticator: bool = True  # the request carried one
    chap: tuple[bytes, bytes] | None = None  # (challenge, CHAP-Password) of a CHAP request


class RecordingError(Exception):
    """Nothing usable was recorded, or the file cannot be written; the message says why."""


def _value(value: str | int | bytes) -> Any:
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    return value


def build_scenario(
    exchanges: list[Exchange],
    *,
    name: str,
    secret: str,
    keep_passwords: bool,
    keep_timing: bool,
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    last_state: dict[str | None, bytes | None] = {}
    counters: dict[str | None, int] = {}
    for exchange in exchanges:
        counters[exchange.user] = counters.get(exchange.user, 0) + 1
        match: dict[str, Any] = {}
        if exchange.user is not None:
            match["userName"] = exchange.user
        if exchange.chap is not None:
            match["chap"] = {
                "challenge": exchange.chap[0].hex(),
                "response": exchange.chap[1].hex(),
            }
        elif exchange.clear_password is not None:
            if keep_passwords:
                match["password"] = exchange.clear_password
            else:
                match["passwordHash"] = hash_password(
                    exchange.clear_password, secrets.token_bytes(16)
                )
        if exchange.state is None:
            match["state"] = "absent"
        elif exchange.state == last_state.get(exchange.user):
            match["state"] = "issued"
        step: dict[str, Any] = {
            "name": f"{exchange.user or 'anonymous'}-{counters[exchange.user]}",
            "match": match,
            "times": 1,
        }
        if exchange.reply_code is None:
            step["drop"] = True
        else:
            attributes = {
                key: ([_value(v) for v in values] if len(values) > 1 else _value(values[0]))
                for key, values in exchange.reply_attributes.items()
                if key not in _NOT_RECORDED and values
            }
            step["reply"] = {"code": exchange.reply_code, "attributes": attributes}
            if keep_timing and exchange.delay > 0:
                step["delay"] = round(exchange.delay, 3)
            states = exchange.reply_attributes.get("State") or []
            first = states[0] if states else None
            last_state[exchange.user] = first if isinstance(first, bytes) else None
        steps.append(step)
    scenario: dict[str, Any] = {
        "name": name,
        "description": f"{len(exchanges)} recorded exchanges",
        "secret": secret,
    }
    if not all(e.message_authenticator for e in exchanges):
        scenario["requireMessageAuthenticator"] = False  # as observed: some client sent none
    scenario["steps"] = steps
    return scenario


def write_scenario(
    exchanges: list[Exchange],
    out: Path,
    *,
    secret: str,
    source: str,
    keep_passwords: bool,
    keep_timing: bool,
    notes: list[str] | None = None,
) -> Path:
    if not exchanges:
        raise RecordingError("nothing was recorded; no file written")
    exchanges = sorted(exchanges, key=lambda e: e.at)
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in out.stem) or "recorded"
    scenario = build_scenario(
        exchanges, name=name, secret=secret, keep_passwords=keep_passwords, keep_timing=keep_timing
    )
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    first = dt.datetime.fromtimestamp(exchanges[0].at, dt.UTC).isoformat(timespec="seconds")
    header = [
        f"# Recorded {now} by mock-radius from {source}.",
        f"# {len(exchanges)} exchanges, the first at {first.replace('+00:00', 'Z')}.",
        "# Passwords: "
        + ("kept in clear text (--keep-passwords)." if keep_passwords else
           "salted SHA-256 hashes (PAP)."),
        "# CHAP steps match the recorded CHAP-Password and challenge exactly (CHAP never",
        "# reveals the password); replace chap: with password: to accept any client.",
        "# Delays: "
        + ("as observed (--keep-timing)." if keep_timing else "none (replies at once)."),
        *[f"# {note}" for note in notes or []],
    ]  # fmt: skip
    text = "\n".join(header) + "\n" + yaml.safe_dump(scenario, sort_keys=False, width=100)
    parse_scenario(text, str(out))  # what we write must load; a bug here must not ship a file
    partial = out.with_name(out.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, out)
    except OSError as exc:
        raise RecordingError(f"{out}: cannot write: {exc.strerror}") from None
    return out
