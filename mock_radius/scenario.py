"""The scenario file format: pydantic models, and a loader whose errors name file, line and field.

No Twisted here: scenarios are plain data that the engine interprets.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pyrad.dictionary import Dictionary

REPLY_CODES = {"Access-Accept": 2, "Access-Reject": 3, "Access-Challenge": 11}
Fault = Literal[
    "bad-response-authenticator",
    "no-message-authenticator",
    "bad-message-authenticator",
    "wrong-identifier",
    "truncated",
    "malformed",
    "duplicate",
]
# attributes the mock computes itself and a scenario may not set
_RESERVED = {"Message-Authenticator", "Proxy-State"}


@cache
def dictionary() -> Dictionary:
    path = resources.files("mock_radius").joinpath("dictionary")
    with resources.as_file(path) as file:
        return Dictionary(str(file))


def _require_known(name: str) -> None:
    if name not in dictionary().attributes:
        raise ValueError(f"unknown attribute {name!r} (not in the mock's dictionary)")


class ScenarioError(Exception):
    """A scenario file is unusable; the message names file, line and field."""


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


class Regex(_Model):
    regex: str

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class Presence(_Model):
    present: bool


ValueMatch = Annotated[str | int | Regex | Presence, Field(union_mode="left_to_right")]


class Match(_Model):
    """Conditions a request must meet; an absent condition always holds."""

    user_name: str | Regex | None = None
    password: str | None = Field(None, description="clear text, checked against PAP or CHAP")
    password_hash: str | None = Field(
        None,
        pattern=r"^sha256:[0-9a-f]{32}:[0-9a-f]{64}$",
        description="sha256:<salt hex>:<sha256(salt + password) hex>, for recordings (PAP only)",
    )
    state: Literal["absent", "issued", "any"] = "any"
    attributes: dict[str, ValueMatch] = {}
    message_authenticator: bool | None = None

    @field_validator("attributes")
    @classmethod
    def _known(cls, attributes: dict[str, Any]) -> dict[str, Any]:
        for name in attributes:
            _require_known(name)
        return attributes


class Hex(_Model):
    hex: str

    @field_validator("hex")
    @classmethod
    def _hex(cls, value: str) -> str:
        try:
            bytes.fromhex(value)
        except ValueError:
            raise ValueError("not hexadecimal") from None
        return value


class Generate(_Model):
    """A State made deterministically from scenario, user, step and a counter."""

    generate: Literal[True]


AttributeValue = Annotated[str | int | Hex | Generate, Field(union_mode="left_to_right")]


class Reply(_Model):
    code: Literal["Access-Accept", "Access-Reject", "Access-Challenge"]
    attributes: dict[str, AttributeValue | list[AttributeValue]] = {}

    @field_validator("attributes")
    @classmethod
    def _known(cls, attributes: dict[str, Any]) -> dict[str, Any]:
        for name, value in attributes.items():
            if name in _RESERVED:
                raise ValueError(f"{name} is computed by the mock and cannot be scripted")
            _require_known(name)
            values = value if isinstance(value, list) else [value]
            if name != "State" and any(isinstance(v, Generate) for v in values):
                raise ValueError("generate: true is only for State")
        return attributes


class Step(_Model):
    name: str | None = None
    match: Match = Match()
    reply: Reply | None = None
    drop: bool = False
    delay: float = Field(0.0, ge=0, le=3600)
    times: int | Literal["always"] = 1
    fault: Fault | None = None
    on_retransmit: Literal["same", "ignore"] = "same"

    @field_validator("times")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be at least 1 or 'always'")
        return value

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        if self.drop == (self.reply is not None):
            raise ValueError("give exactly one of reply and drop: true")
        if self.drop and self.fault is not None:
            raise ValueError("a dropped request has no reply to fault")
        return self


class Scenario(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    secret: str = Field(min_length=1)
    require_message_authenticator: bool = True
    users: list[str] = []
    on_mismatch: Reply = Reply(code="Access-Reject")
    steps: list[Step] = Field(min_length=1)
    # What the scenario should produce through the reference server (HTTP calls, statuses,
    # fields). The mock ignores it; the end-to-end suite (tests/e2e_spec.py) reads it.
    end_to_end: dict[str, Any] | None = None

    def step_name(self, index: int) -> str:
        return self.steps[index].name or f"step-{index + 1}"


def _positions(node: yaml.Node, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Line (1-based) of every key path in a composed YAML document."""
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            lines.update(_positions(value, child))
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_positions(item, (*path, index)))
    return lines


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    # pydantic adds union member names (e.g. "str", "Regex") to locations; drop what YAML lacks
    path: tuple[Any, ...] = ()
    for part in loc:
        if (*path, part) in lines:
            path = (*path, part)
    return lines.get(path, 1)


def _field(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int], missing: bool) -> str:
    path: list[str] = []
    probe: tuple[Any, ...] = ()
    for part in loc:
        if (*probe, part) in lines:
            probe = (*probe, part)
            path.append(f"[{part}]" if isinstance(part, int) else str(part))
    if missing and loc and loc[-1] not in probe:
        path.append(str(loc[-1]))  # a required key that is not in the file at all
    text = ".".join(path).replace(".[", "[")
    return text or "(top level)"


def parse_scenario(text: str, source: str) -> Scenario:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{where}: not valid YAML: {problem}") from None
    if node is None or not isinstance(data, dict):
        raise ScenarioError(f"{source}:1: a scenario must be a YAML mapping")
    lines = _positions(node)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        seen: set[str] = set()
        messages: list[str] = []
        for item in exc.errors(include_url=False):
            loc = tuple(item["loc"])
            message = str(item["msg"]).removeprefix("Value error, ")
            if item["type"] == "extra_forbidden":
                message = "unknown key"
            name = _field(loc, lines, item["type"] == "missing")
            line = f"{source}:{_line_of(loc, lines)}: {name}: {message}"
            if line not in seen:
                seen.add(line)
                messages.append(line)
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
        raise ScenarioError(f"{location}: no scenario files (*.yaml)")
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
