# -*- test-case-name: tests.test_mock_schema, tests.test_mock_scenarios -*-
"""The scenario file format: pydantic models, and a loader whose errors name file, line and field.

No Twisted here: scenarios are plain data that the engine interprets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from mfa_shared.safe_yaml import Lines, YamlProblem, in_file, load_yaml, show
from mock_radius.faults import Fault
from radius_codec.dictionary import dictionary, encode_value

ReplyCode = Literal["Access-Accept", "Access-Reject", "Access-Challenge"]
# computed by the mock for every reply: never scripted, recorded or shown as a reply's own
COMPUTED_ATTRIBUTES = frozenset({"Message-Authenticator", "Proxy-State"})


def attribute_names(*, reply: bool = False) -> list[str]:
    """The attribute names a scenario may use (a reply may not set the computed ones)."""
    names = sorted(str(n) for n in dictionary().attributes)
    return [n for n in names if not (reply and n in COMPUTED_ATTRIBUTES)]


def _require_known(name: str) -> None:
    if name not in dictionary().attributes:
        raise ValueError(f"unknown attribute {name!r} (not in the mock's dictionary)")


def _attribute_keys(*, reply: bool) -> Any:
    """JSON Schema for editors: the keys of an attribute map are the dictionary's names."""

    def extra(schema: dict[str, Any]) -> None:
        schema["propertyNames"] = {"enum": attribute_names(reply=reply)}

    return extra


class ScenarioError(Exception):
    """A scenario file is unusable; the message names file, line and field."""


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


class Regex(_Model):
    regex: str = Field(description="a Python regular expression the whole value must match")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class Presence(_Model):
    present: bool = Field(description="true: the attribute must be there; false: absent")


ValueMatch = Annotated[str | int | Regex | Presence, Field(union_mode="left_to_right")]


def _hex_of_length(value: str, length: int | None = None) -> str:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ValueError("not hexadecimal") from None
    if length is not None and len(raw) != length:
        raise ValueError(f"must be {length} octets ({2 * length} hex digits)")
    return value


class Chap(_Model):
    """A recorded CHAP exchange: the request must carry exactly this CHAP-Password computed
    over exactly this challenge (CHAP never reveals the password, so this is how a recording
    tells one CHAP password from another)."""

    challenge: str = Field(
        description="hex: the CHAP-Challenge attribute, else the Request Authenticator"
    )
    response: str = Field(description="hex: the CHAP-Password attribute (identifier + 16 octets)")

    @field_validator("challenge")
    @classmethod
    def _challenge(cls, value: str) -> str:
        return _hex_of_length(value)

    @field_validator("response")
    @classmethod
    def _response(cls, value: str) -> str:
        return _hex_of_length(value, 17)


class Match(_Model):
    """Conditions a request must meet; an absent condition always holds."""

    user_name: str | Regex | None = Field(None, description="the User-Name, or {regex: ...}")
    password: str | list[str] | None = Field(
        None,
        description="clear text (or a list of alternatives), checked against the PAP "
        "User-Password or by verifying the CHAP-Password",
    )
    not_password: str | list[str] | None = Field(
        None,
        description="the request carries a password (PAP or CHAP) and it is none of these: a "
        "wrong password, as recordings with --passwords write it",
    )
    password_hash: str | None = Field(
        None,
        pattern=r"^sha256:[0-9a-f]{32}:[0-9a-f]{64}$",
        description="sha256:<salt hex>:<sha256(salt + password) hex>, for recordings (PAP only)",
    )
    chap: Chap | None = Field(None, description="an exact recorded CHAP exchange")
    state: Literal["absent", "issued", "any"] = Field(
        "any",
        description="absent: no State; issued: the State this exchange was last given, byte "
        "for byte; any: no condition",
    )
    attributes: dict[str, ValueMatch] = Field(
        {},
        description="any dictionary attribute: a value, {regex: ...} or {present: true|false}",
        json_schema_extra=_attribute_keys(reply=False),
    )
    message_authenticator: bool | None = Field(
        None, description="true: the request must carry a valid one; false: must carry none"
    )

    @field_validator("password", "not_password")
    @classmethod
    def _alternatives(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("give at least one password")
        return value

    @field_validator("attributes")
    @classmethod
    def _known(cls, attributes: dict[str, Any]) -> dict[str, Any]:
        for name in attributes:
            _require_known(name)
        return attributes

    def passwords(self) -> tuple[str, ...]:
        """The accepted passwords (empty: no password condition)."""
        return _listed(self.password)

    def wrong_passwords(self) -> tuple[str, ...]:
        """The passwords a request must not carry (empty: no such condition)."""
        return _listed(self.not_password)


def _listed(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


class Hex(_Model):
    hex: str = Field(description="octets as hexadecimal digits")

    @field_validator("hex")
    @classmethod
    def _hex(cls, value: str) -> str:
        return _hex_of_length(value)


class Generate(_Model):
    """A new State for every exchange: random, or with serve's --seed made from the seed,
    scenario, user, step and a counter, so the same requests give the same States."""

    generate: Literal[True]


AttributeValue = Annotated[str | int | Hex | Generate, Field(union_mode="left_to_right")]
PlainValue = Annotated[str | int | Hex, Field(union_mode="left_to_right")]


def _check_reply_attributes(attributes: dict[str, Any], *, generate_ok: bool) -> None:
    for name, value in attributes.items():
        if name in COMPUTED_ATTRIBUTES:
            raise ValueError(f"{name} is computed by the mock and cannot be scripted")
        _require_known(name)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, Generate):
                if not (generate_ok and name == "State"):
                    raise ValueError("generate: true is only for State")
            else:
                encode_value(name, bytes.fromhex(item.hex) if isinstance(item, Hex) else item)


class Reply(_Model):
    code: ReplyCode
    attributes: dict[str, AttributeValue | list[AttributeValue]] = Field(
        {},
        description="attributes in order; a list repeats the attribute",
        json_schema_extra=_attribute_keys(reply=True),
    )

    @field_validator("attributes")
    @classmethod
    def _known(cls, attributes: dict[str, Any]) -> dict[str, Any]:
        _check_reply_attributes(attributes, generate_ok=True)
        return attributes


class OnMismatch(Reply):
    """The reply to a request no step fits."""

    hint: bool | None = Field(
        None,
        description="true: add a Reply-Message naming the closest step and what failed (when "
        "the reply sets none of its own); false: never; omitted: as serve's --mismatch-hint "
        "says (default: the hint is journalled only)",
    )


Times = int | Literal["always"] | None


def _positive(value: Times) -> Times:
    if isinstance(value, int) and value < 1:
        raise ValueError("must be at least 1 or 'always'")
    return value


class Step(_Model):
    name: str | None = Field(None, description="shown in the journal; default step-N")
    match: Match = Match()
    reply: Reply | None = None
    drop: bool = Field(False, description="no answer at all (timeouts)")
    delay: float = Field(0.0, ge=0, le=3600, description="seconds before replying (scaled)")
    times: Times = Field(
        None,
        description="omitted: any number of exchanges, once per exchange; N: N uses in all "
        "(counted across the user's exchanges); always: no limit",
    )
    fault: Fault | None = None
    on_retransmit: Literal["same", "ignore"] = Field(
        "same",
        description="same: a retransmission after the reply gets it again; ignore: never",
    )

    @field_validator("times")
    @classmethod
    def _positive(cls, value: Times) -> Times:
        return _positive(value)

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        if self.drop == (self.reply is not None):
            raise ValueError("give exactly one of reply and drop: true")
        if self.drop and self.fault is not None:
            raise ValueError("a dropped request has no reply to fault")
        return self


class AccountingMatch(_Model):
    user_name: str | Regex | None = Field(None, description="the User-Name, or {regex: ...}")
    attributes: dict[str, ValueMatch] = Field(
        {},
        description="e.g. Acct-Status-Type: Start",
        json_schema_extra=_attribute_keys(reply=False),
    )

    @field_validator("attributes")
    @classmethod
    def _known(cls, attributes: dict[str, Any]) -> dict[str, Any]:
        for name in attributes:
            _require_known(name)
        return attributes


class AccountingReply(_Model):
    code: Literal["Accounting-Response"] = "Accounting-Response"
    attributes: dict[str, PlainValue | list[PlainValue]] = Field(
        {}, json_schema_extra=_attribute_keys(reply=True)
    )

    @field_validator("attributes")
    @classmethod
    def _known(cls, attributes: dict[str, Any]) -> dict[str, Any]:
        _check_reply_attributes(attributes, generate_ok=False)
        return attributes


class AccountingStep(_Model):
    name: str | None = Field(None, description="shown in the journal; default accounting-N")
    match: AccountingMatch = AccountingMatch()
    reply: AccountingReply | None = None
    drop: bool = Field(False, description="no Accounting-Response (the NAS will retry)")
    delay: float = Field(0.0, ge=0, le=3600, description="seconds before replying (scaled)")
    times: Times = Field(None, description="as for steps; every request is an exchange")

    @field_validator("times")
    @classmethod
    def _positive(cls, value: Times) -> Times:
        return _positive(value)

    @model_validator(mode="after")
    def _one_action(self) -> AccountingStep:
        if self.drop == (self.reply is not None):
            raise ValueError("give exactly one of reply and drop: true")
        return self


class Scenario(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    secret: str = Field(min_length=1, description="the shared secret")
    require_message_authenticator: bool = Field(
        True, description="false: accept Access-Requests without a Message-Authenticator"
    )
    users: list[str] = Field([], description="requests from these User-Names use this scenario")
    on_mismatch: OnMismatch = OnMismatch(code="Access-Reject")
    steps: list[Step] = Field(min_length=1)
    accounting: list[AccountingStep] | None = Field(
        None,
        description="how Accounting-Requests are answered; omitted: an empty "
        "Accounting-Response to every one",
    )
    # What the scenario should produce through the reference server (HTTP calls, statuses,
    # fields). The mock ignores it; the end-to-end suite (tests/e2e_spec.py) reads it.
    end_to_end: dict[str, Any] | None = Field(
        None, description="read by the project's end-to-end tests; the mock ignores it"
    )

    def step_name(self, index: int) -> str:
        return self.steps[index].name or f"step-{index + 1}"

    def summary(self) -> dict[str, Any]:
        """The scenario for people watching a run: each step's conditions (passwords masked),
        action, delay and uses."""

        def step(name: str, match: _Model, reply: Any, drop: bool, delay: float,
                 times: Times) -> dict[str, Any]:  # fmt: skip
            conditions = match.model_dump(by_alias=True, exclude_defaults=True, mode="json")
            for secret in ("password", "notPassword", "passwordHash", "chap"):
                if secret in conditions:
                    conditions[secret] = "***"
            return {"name": name, "match": conditions, "drop": drop, "delay": delay,
                    "times": times, "reply": None if reply is None else reply.code}  # fmt: skip

        return {
            "name": self.name,
            "description": self.description.strip(),
            "users": self.users,
            "requireMessageAuthenticator": self.require_message_authenticator,
            "steps": [step(self.step_name(i), s.match, s.reply, s.drop, s.delay, s.times)
                      for i, s in enumerate(self.steps)],
            "accounting": [step(self.accounting_step_name(i), s.match, s.reply, s.drop, s.delay,
                                s.times) for i, s in enumerate(self.accounting or [])],
        }  # fmt: skip

    def accounting_step_name(self, index: int) -> str:
        steps = self.accounting or []
        return steps[index].name or f"accounting-{index + 1}"


def json_schema() -> dict[str, Any]:
    """The scenario format as JSON Schema (draft 2020-12), for editors and other tools."""
    schema = Scenario.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mock-radius scenario",
        "description": "A script the mock RADIUS server replays (docs/scenarios.md).",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def _where(loc: tuple[Any, ...], lines: Lines, missing: bool) -> tuple[int, str]:
    """The line and the key path of a validation error, as far as the file has them."""
    path = in_file(loc, lines)
    line = lines.get(path, 1)
    if missing and loc and loc[-1] not in path:
        path = (*path, loc[-1])  # a required key that is not in the file at all
    return line, show(path)


def parse_scenario(text: str, source: str) -> Scenario:
    try:
        data, lines = load_yaml(text, source)  # the server's loader too: bombs refused
    except YamlProblem as exc:
        raise ScenarioError(str(exc)) from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        seen: set[str] = set()
        messages: list[str] = []
        for item in exc.errors(include_url=False):
            message = str(item["msg"]).removeprefix("Value error, ")
            if item["type"] == "extra_forbidden":
                message = "unknown key"
            line, name = _where(tuple(item["loc"]), lines, item["type"] == "missing")
            text_line = f"{source}:{line}: {name}: {message}"
            if text_line not in seen:
                seen.add(text_line)
                messages.append(text_line)
        raise ScenarioError("\n".join(messages)) from None


def load_scenario(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    return parse_scenario(text, str(path))


def scenario_files(location: Path) -> list[Path]:
    if location.is_dir():
        return sorted([*location.glob("*.yaml"), *location.glob("*.yml")])
    return [location]


def load_scenarios(location: Path) -> list[Scenario]:
    """Every scenario of a file or a folder; all errors of all files in one ScenarioError."""
    files = scenario_files(location)
    if not files:
        raise ScenarioError(f"{location}: no scenario files (*.yaml, *.yml)")
    scenarios: list[Scenario] = []
    problems: list[str] = []
    for file in files:
        try:
            scenarios.append(load_scenario(file))
        except ScenarioError as exc:
            problems.append(str(exc))
    names = [s.name for s in scenarios]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"{location}: scenario name {name!r} is used more than once")
    if problems:
        raise ScenarioError("\n".join(problems))
    return scenarios
