# -*- test-case-name: tests.test_record_import -*-
"""Recorded RADIUS exchanges -> a scenario file that replays them (shared by ``record`` and
``import``). No Twisted here.

Each Access-Request becomes one step, used once (``times: 1``), in order: it matches the user,
the password and the State (``issued`` when the request echoed the State of this user's
previous reply, so State chains replay), and it answers with the recorded code and attributes,
the recorded State bytes included. Each Accounting-Request becomes an accounting step the same
way (user and Acct-Status-Type). A request that got no answer becomes a ``drop`` used once per
transmission the client made, so the same client sees the same silence.

The password condition:

- the user's password given (``record --passwords``): ``password: <clear>`` when the request
  carried it (a PAP password compared, a CHAP-Password verified), ``notPassword: <clear>`` when
  it carried another. Clear text, because a CHAP response can only be checked against the
  password itself (MD5 over identifier, password and challenge): a salted hash of it cannot
  check one. So PAP and CHAP replays of any client pass with the right password, and a wrong
  one gets what the wrong one got.
- otherwise, PAP: a salted SHA-256 of the password sent (``passwordHash``), or clear text with
  ``--keep-passwords``.
- otherwise, CHAP: the exact recorded CHAP-Password and challenge (``chap:``), since CHAP never
  reveals the password: only the same request fits.

``requireMessageAuthenticator`` is what the upstream did: ``record`` learns it with a probe
(``record.py``); a capture shows it when a request without one was answered.

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
from mock_radius.request_view import view
from mock_radius.scenario import COMPUTED_ATTRIBUTES, parse_scenario
from radius_codec.authenticators import MaStatus
from radius_codec.packet import Packet
from radius_codec.passwords import AuthProtocol, chap_matches

# The recording proxy's defaults, here (no Twisted) so the command line can show them
DEFAULT_UPSTREAM_TIMEOUT = 5.0  # seconds for the upstream's answer; then the exchange is a drop
DEFAULT_PROBE_TIMEOUT = 2.0  # seconds the probe without a Message-Authenticator waits
PROBE, REQUIRED, OPTIONAL = "probe", "required", "optional"  # the upstream's MA rule
UPSTREAM_MA_CHOICES = (PROBE, REQUIRED, OPTIONAL)
ACCESS, ACCOUNTING = "access", "accounting"


@dataclass
class Exchange:
    user: str | None
    auth_type: AuthProtocol | None
    clear_password: str | None
    state: bytes | None  # the State the request carried
    at: float  # when the request was seen (epoch seconds)
    reply_code: str | None = None  # None: no answer
    reply_attributes: dict[str, list[str | int | bytes]] = field(default_factory=dict)
    delay: float = 0.0
    message_authenticator: bool = True  # the request carried one
    chap: tuple[bytes, bytes] | None = None  # (challenge, CHAP-Password) of a CHAP request
    kind: str = ACCESS  # or ACCOUNTING
    status_type: str | int | None = None  # Acct-Status-Type of an Accounting-Request
    transmissions: int = 1  # copies the client sent (retransmissions included)


def access_exchange(request: Packet, secret: bytes, ma: MaStatus, at: float) -> Exchange:
    """An Access-Request seen at ``at`` (by the proxy, or in a capture) as an exchange whose
    reply is still to come; ``ma`` is its Message-Authenticator's status."""
    seen = view(request, secret, ma)
    return Exchange(
        user=seen.user_name, auth_type=seen.auth_type, clear_password=seen.clear_password,
        state=seen.state, at=at, message_authenticator=ma is not MaStatus.ABSENT, chap=seen.chap,
    )  # fmt: skip


class RecordingError(Exception):
    """Nothing usable was recorded, or the file cannot be written; the message says why."""


def read_passwords(lines: list[str], source: str) -> dict[str, str]:
    """``USER:PASSWORD`` per line (split at the first colon; ``#`` comments and blank lines
    skipped), for ``record --passwords`` and ``--password``."""
    found: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, colon, password = line.rstrip("\r\n").partition(":")
        if not colon or not user:
            raise RecordingError(f"{source}:{number}: expected USER:PASSWORD")
        found[user] = password
    return found


@dataclass
class _Written:
    """What ``build_scenario`` did, for the file's header."""

    listed: int = 0  # steps matching a password given with --passwords
    hashed: int = 0
    clear: int = 0
    chap_exact: int = 0


def _value(value: str | int | bytes) -> Any:
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    return value


def _reply_attributes(exchange: Exchange) -> dict[str, Any]:
    return {
        key: ([_value(v) for v in values] if len(values) > 1 else _value(values[0]))
        for key, values in exchange.reply_attributes.items()
        if key not in COMPUTED_ATTRIBUTES and values
    }


def _carries(exchange: Exchange, password: str) -> bool:
    """Did the request carry this password (PAP: it is the one; CHAP: it verifies)?"""
    if exchange.chap is not None:
        return chap_matches(*exchange.chap, password.encode("utf-8"))
    return exchange.clear_password is not None and exchange.clear_password == password


def _password_condition(
    exchange: Exchange, passwords: dict[str, str], keep_passwords: bool, written: _Written
) -> dict[str, Any]:
    listed = passwords.get(exchange.user) if exchange.user is not None else None
    if listed is not None and (exchange.chap is not None or exchange.clear_password is not None):
        written.listed += 1
        if _carries(exchange, listed):
            return {"password": listed}
        return {"notPassword": listed}  # a wrong one: any wrong one replays the same
    if exchange.chap is not None:
        written.chap_exact += 1
        return {"chap": {"challenge": exchange.chap[0].hex(), "response": exchange.chap[1].hex()}}
    if exchange.clear_password is None:
        return {}
    if keep_passwords:
        written.clear += 1
        return {"password": exchange.clear_password}
    written.hashed += 1
    return {"passwordHash": hash_password(exchange.clear_password, secrets.token_bytes(16))}


def _access_step(
    exchange: Exchange,
    name: str,
    state: str | None,
    condition: dict[str, Any],
    keep_timing: bool,
) -> dict[str, Any]:
    match: dict[str, Any] = {} if exchange.user is None else {"userName": exchange.user}
    match.update(condition)
    if state is not None:
        match["state"] = state
    step: dict[str, Any] = {"name": name, "match": match}
    if exchange.reply_code is None:  # lost every transmission the client made
        return {**step, "times": exchange.transmissions, "drop": True}
    step["times"] = 1
    step["reply"] = {"code": exchange.reply_code, "attributes": _reply_attributes(exchange)}
    if keep_timing and exchange.delay > 0:
        step["delay"] = round(exchange.delay, 3)
    return step


def _accounting_step(exchange: Exchange, name: str, keep_timing: bool) -> dict[str, Any]:
    match: dict[str, Any] = {} if exchange.user is None else {"userName": exchange.user}
    if exchange.status_type is not None:
        match["attributes"] = {"Acct-Status-Type": exchange.status_type}
    step: dict[str, Any] = {"name": name, "match": match}
    if exchange.reply_code is None:
        return {**step, "times": exchange.transmissions, "drop": True}
    step["times"] = 1
    step["reply"] = {"attributes": _reply_attributes(exchange)}
    if keep_timing and exchange.delay > 0:
        step["delay"] = round(exchange.delay, 3)
    return step


def build_scenario(
    exchanges: list[Exchange],
    *,
    name: str,
    secret: str,
    keep_passwords: bool,
    keep_timing: bool,
    passwords: dict[str, str] | None = None,
    require_ma: bool | None = None,
    written: _Written | None = None,
) -> dict[str, Any]:
    """``require_ma``: the upstream requires a Message-Authenticator (None: not known; then a
    request without one that was answered says it does not)."""
    written = written or _Written()
    steps: list[dict[str, Any]] = []
    accounting: list[dict[str, Any]] = []
    last_state: dict[str | None, bytes | None] = {}
    counters: dict[tuple[str, str | None], int] = {}
    for exchange in exchanges:
        key = (exchange.kind, exchange.user)
        counters[key] = counters.get(key, 0) + 1
        label = exchange.user or "anonymous"
        if exchange.kind == ACCOUNTING:
            accounting.append(
                _accounting_step(exchange, f"{label}-acct-{counters[key]}", keep_timing)
            )
            continue
        state = None
        if exchange.state is None:
            state = "absent"
        elif exchange.state == last_state.get(exchange.user):
            state = "issued"
        condition = _password_condition(exchange, passwords or {}, keep_passwords, written)
        step_name = f"{label}-{counters[key]}"
        steps.append(_access_step(exchange, step_name, state, condition, keep_timing))
        if exchange.reply_code is not None:
            states = exchange.reply_attributes.get("State") or []
            first = states[0] if states else None
            last_state[exchange.user] = first if isinstance(first, bytes) else None
    scenario: dict[str, Any] = {
        "name": name,
        "description": f"{len(steps)} recorded Access-Requests, {len(accounting)} "
        "Accounting-Requests",
        "secret": secret,
    }
    if require_ma is None and any(
        e.kind == ACCESS and not e.message_authenticator and e.reply_code for e in exchanges
    ):
        require_ma = False  # a request without one was answered
    if require_ma is False:
        scenario["requireMessageAuthenticator"] = False
    scenario["steps"] = steps or [
        {"name": "no-access-request-recorded", "times": "always", "drop": True}
    ]
    if accounting:
        scenario["accounting"] = accounting
    return scenario


def _password_notes(written: _Written, keep_passwords: bool, listed: bool) -> list[str]:
    notes = []
    if written.listed:
        notes += [
            f"Passwords: {written.listed} steps hold the password given with --passwords, in",
            "clear text: a CHAP response can only be checked against the password itself (not",
            "against a hash), so PAP and CHAP replays of any client that knows it pass",
            "(password:), and any wrong one gets what the wrong one got (notPassword:).",
        ]
    if written.hashed or written.clear:
        how = "clear text (--keep-passwords)" if keep_passwords else "salted SHA-256 hashes"
        notes.append(f"Other PAP passwords: {how}.")
    if written.chap_exact:
        whose = "users without a password given" if listed else "no --passwords given"
        notes += [
            f"{written.chap_exact} CHAP steps match the recorded CHAP-Password and challenge",
            f"exactly ({whose}; CHAP never reveals the password): only the same request fits.",
        ]
    return notes or ["Passwords: none were sent."]


def write_scenario(
    exchanges: list[Exchange],
    out: Path,
    *,
    secret: str,
    source: str,
    keep_passwords: bool,
    keep_timing: bool,
    notes: list[str] | None = None,
    passwords: dict[str, str] | None = None,
    require_ma: bool | None = None,
    ma_note: str | None = None,
) -> Path:
    if not exchanges:
        raise RecordingError("nothing was recorded; no file written")
    exchanges = sorted(exchanges, key=lambda e: e.at)
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in out.stem) or "recorded"
    written = _Written()
    scenario = build_scenario(
        exchanges, name=name, secret=secret, keep_passwords=keep_passwords,
        keep_timing=keep_timing, passwords=passwords, require_ma=require_ma, written=written,
    )  # fmt: skip
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    first = dt.datetime.fromtimestamp(exchanges[0].at, dt.UTC).isoformat(timespec="seconds")
    required = scenario.get("requireMessageAuthenticator", True)
    header = [
        f"Recorded {now} by mock-radius from {source}.",
        f"{len(exchanges)} exchanges, the first at {first.replace('+00:00', 'Z')}.",
        *_password_notes(written, keep_passwords, bool(passwords)),
        ma_note or ("Message-Authenticator: " + ("required (the default)." if required else
                                                   "not required: a request without one was "
                                                   "answered.")),
        "Delays: " + ("as observed (--keep-timing)." if keep_timing else "none (replies at once)."),
        *(notes or []),
    ]  # fmt: skip
    text = "".join(f"# {line}\n" for line in header) + yaml.safe_dump(
        scenario, sort_keys=False, width=100
    )
    parse_scenario(text, str(out))  # what we write must load; a bug here must not ship a file
    partial = out.with_name(out.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, out)
    except OSError as exc:
        raise RecordingError(f"{out}: cannot write: {exc.strerror}") from None
    return out
