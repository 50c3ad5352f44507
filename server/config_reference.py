# -*- test-case-name: tests.test_docs -*-
"""The configuration reference (docs/configuration.md), generated from the models in config.py.

    python3 -m appgate_mfa_server.config_reference > docs/configuration.md

Every key gets its type, default, description and an example straight from the pydantic fields,
so the page cannot drift from the code; a test fails when the committed page is out of date, and
this raises when a field lacks a description or an example.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from appgate_mfa_server.config import Settings, parse_duration

COMMAND = "python3 -m appgate_mfa_server.config_reference > docs/configuration.md"
TOP = "Top level"

INTRO = f"""\
# Configuration reference

<!-- Generated from server/config.py by `{COMMAND}`.
     Do not edit by hand: tests/test_docs.py fails when this page is out of date. -->

`mfa-server` reads one YAML file: `mfa-server --config FILE`, else the file named by the
environment variable `MFA_SERVER_CONFIG`, else the embedded demo configuration
([server/demo.yaml](../server/demo.yaml)). Keys are camelCase, like the vendor's objects.

- Unknown keys are errors, and so are duplicate keys.
- Relative paths (the SQLite file, the key file) are resolved against the folder of the
  configuration file, not the working directory (the demo's: the `--data-dir` folder).
- A *duration* is a number of seconds or a string with a unit: `250ms`, `90s`, `15m`, `24h`,
  `7d`. Bounds (`duration (≤ 300)`) are in seconds, but a value over one is refused in the unit
  it was written in: `timeout: 10m` gets `must be at most 5m, not 10m`.
- `mfa-server check-config FILE` validates a file without starting anything: it prints
  `FILE: ok`, or one `FILE:LINE: key.path: problem` per problem and exits with status 1.
  `mfa-server --config FILE` refuses to start on the same problems (exit status 2).

Complete files that are known to load (the tests load them):
[server/demo.yaml](../server/demo.yaml) (every MFA type, SQLite) and
[docker/server.yaml](../docker/server.yaml) (PostgreSQL, RADIUS on another host).
"""


class MissingDocumentation(Exception):
    """A field lacks a description or an example; the reference would be incomplete."""


@dataclass
class Section:
    """One table: the keys of one model, wherever the file holds it."""

    model: type[BaseModel]
    places: list[str]  # key paths, e.g. mfaProviders[].lockout
    defaults: dict[str, BaseModel]  # place -> the default when the whole mapping is left out
    tag: str | None = None  # the `type` value that selects this model in a union

    @property
    def title(self) -> str:
        title = ", ".join(dict.fromkeys(self.places))
        return f"{title} with type {self.tag}" if self.tag else title


def _strip(annotation: Any) -> tuple[Any, list[Any]]:
    """The bare type and the metadata of Annotated[...] wrappers around it."""
    metadata: list[Any] = []
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        for item in extra:  # Annotated[str, Field(min_length=1)] holds its constraints inside
            metadata += item.metadata if isinstance(item, FieldInfo) else [item]
    return annotation, metadata


def _members(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return list(get_args(annotation))
    return [annotation]


def _is_duration(metadata: list[Any]) -> bool:
    return any(isinstance(m, BeforeValidator) and m.func is parse_duration for m in metadata)


def _constraints(metadata: list[Any]) -> str:
    words: list[str] = []
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            words.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            words.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            words.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.MultipleOf):
            words.append(f"a multiple of {item.multiple_of}")
        elif isinstance(item, annotated_types.MinLen):
            words.append("not empty" if item.min_length == 1 else f"length ≥ {item.min_length}")
    return ", ".join(words)


def _type_name(annotation: Any, metadata: list[Any], titles: dict[type[BaseModel], str]) -> str:
    """The type in words, with links to the sections of nested mappings."""
    annotation, more = _strip(annotation)
    metadata = [*metadata, *more]
    members = _members(annotation)
    nullable = type(None) in members
    members = [m for m in members if m is not type(None)]
    if len(members) > 1:  # a union of mappings, told apart by their `type` key
        links = ", ".join(_link(m, titles) for m in members)
        text = f"mapping, by `type`: {links}"
    else:
        text = _single_type(members[0], metadata, titles)
    return f"{text}, or null" if nullable else text


def _single_type(annotation: Any, metadata: list[Any], titles: dict[type[BaseModel], str]) -> str:
    constraints = _constraints(metadata)
    suffix = f" ({constraints})" if constraints else ""
    origin = get_origin(annotation)
    if origin is list:
        item_type = _type_name(get_args(annotation)[0], [], titles)
        length = f", at least {_min_length(metadata)}" if _min_length(metadata) else ""
        return f"list of: {item_type}{length}"
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"mapping: {_link(annotation, titles)}"
    if _is_duration(metadata):
        return "duration" + suffix
    names = {str: "string", int: "integer", float: "number", bool: "boolean",
             IPv4Address: "IPv4 address"}  # fmt: skip
    if annotation not in names:
        raise MissingDocumentation(f"no words for the type {annotation!r}")
    return names[annotation] + suffix


def _min_length(metadata: list[Any]) -> int:
    return next((m.min_length for m in metadata if isinstance(m, annotated_types.MinLen)), 0)


def _link(model: type[BaseModel], titles: dict[type[BaseModel], str]) -> str:
    return f"[{titles[model]}](#{slug(titles[model])})"


def slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


def _sections() -> list[Section]:
    """The tables, in the order of the file's keys, each model once with all its places."""
    found: dict[type[BaseModel], Section] = {}

    def visit(model: type[BaseModel], place: str, default: Any, tag: str | None) -> None:
        section = found.setdefault(model, Section(model, [], {}, tag))
        section.places.append(place)
        if isinstance(default, BaseModel) and default != model():
            section.defaults[place] = default
        if len(section.places) > 1:
            return
        for key, field in model.model_fields.items():
            child = field.alias or key
            for nested, suffix, nested_tag in _nested(field.annotation):
                path = f"{place}.{child}{suffix}" if place != TOP else f"{child}{suffix}"
                visit(nested, path, field.default, nested_tag)

    visit(Settings, TOP, None, None)
    return list(found.values())


def _nested(annotation: Any) -> Iterator[tuple[type[BaseModel], str, str | None]]:
    """The models inside a field's type: each with the path suffix (``[]`` for lists) and, in
    a union, the value of its ``type`` key."""
    annotation, _ = _strip(annotation)
    suffix = ""
    if get_origin(annotation) is list:
        annotation, _ = _strip(get_args(annotation)[0])
        suffix = "[]"
    members = [m for m in _members(annotation) if isinstance(m, type)]
    models = [m for m in members if issubclass(m, BaseModel)]
    for model in models:
        yield model, suffix, _tag(model) if len(models) > 1 else None


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    return None if field is None else str(get_args(field.annotation)[0])


def _yaml(value: Any) -> str:
    """A value as it would be written in the file, on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
    return text.removesuffix("\n...\n").strip()


def _seconds(value: float) -> str:
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{int(value * 1000)}ms" if value < 1 else f"{value:g}s"


def _plain(value: Any, model: type[BaseModel] | None = None) -> Any:
    """A default as YAML would hold it: models as mappings, durations with units."""
    if isinstance(value, BaseModel):
        return {
            (field.alias or key): _plain_field(getattr(value, key), field)
            for key, field in type(value).model_fields.items()
        }
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, IPv4Address):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _plain_field(value: Any, field: FieldInfo) -> Any:
    if _is_duration(field.metadata) and isinstance(value, float):
        return _seconds(value)
    return _plain(value)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default is None:
        return "unset"
    if isinstance(field.default, BaseModel) and field.default == type(field.default)():
        return "each key's default"
    return f"`{_yaml(_plain_field(field.default, field))}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(section: Section, titles: dict[type[BaseModel], str]) -> list[str]:
    rows = [
        "| key | type | default | description | example |",
        "|---|---|---|---|---|",
    ]
    for key, field in section.model.model_fields.items():
        name = field.alias or key
        where = f"{section.places[0]}.{name}"
        if not field.description:
            raise MissingDocumentation(f"{where} has no description")
        if not field.examples:
            raise MissingDocumentation(f"{where} has no example")
        kind = _type_name(field.annotation, field.metadata, titles)
        example = f"`{_yaml(field.examples[0])}`"
        cells = [f"`{name}`", kind, _default(field), field.description, example]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return rows


def _notes(section: Section) -> list[str]:
    notes = [" ".join((section.model.__doc__ or "").replace("``", "`").split())]
    for place, default in section.defaults.items():
        notes.append(
            f"Left out entirely, `{place}` is `{_yaml(_plain(default))}`; a key left out of a "
            "mapping that is given takes the default below."
        )
    return [note for note in notes if note]


def render() -> str:
    """The whole page."""
    sections = _sections()
    titles = {section.model: section.title for section in sections}
    out = [INTRO]
    for section in sections:
        out.append(f"## {section.title}\n")
        out += [f"{note}\n" for note in _notes(section)]
        out.append("\n".join(_table(section, titles)) + "\n")
    return "\n".join(out)


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
