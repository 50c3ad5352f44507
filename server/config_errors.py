"""Configuration problems as ``file:line: key.path: problem``, one per line.

The form of compilers and of ``mock-radius validate``, so an editor can jump to the line. Line
numbers come from the composed YAML nodes; key paths keep only what is in the file (pydantic adds
union tags such as ``Radius`` to its locations); unknown keys and values get a did-you-mean.
The YAML itself is read by ``mfa_shared.safe_yaml``, the loader of the mock's scenarios too (the
server never imports its test double; both import the neutral package).
"""

from __future__ import annotations

import difflib
import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from mfa_shared import safe_yaml
from mfa_shared.safe_yaml import KeyPath, Lines
from mfa_shared.safe_yaml import in_file as _in_file
from mfa_shared.safe_yaml import show as _show

# A validator may point below the value it checked with this context key (a key path suffix),
# e.g. at the mfaProvider key of the identity provider that names an unknown provider.
BELOW = "below"


class ConfigError(Exception):
    """The configuration cannot be used; the message is meant for the operator as is."""


def load_yaml(text: str, source: str) -> tuple[Any, Lines]:
    """The document and the line (1-based) of every key path in it, read by the loader the mock
    uses too (mfa_shared: safe, duplicate keys and alias bombs refused)."""
    try:
        return safe_yaml.load_yaml(text, source)
    except safe_yaml.YamlProblem as exc:
        raise ConfigError(str(exc)) from None


def validation_problems(
    source: str, error: ValidationError, lines: Lines, model: type[BaseModel]
) -> list[str]:
    """One ``file:line: key.path: problem`` per pydantic error, in file order."""
    found: dict[str, int] = {}
    for item in error.errors(include_url=False):
        loc: KeyPath = tuple(item["loc"])
        below = (item.get("ctx") or {}).get(BELOW)
        if isinstance(below, tuple):  # the key may be absent from the file: keep it anyway
            path, problem = (*_in_file(loc, lines), *below), str(item["msg"])
        else:
            path, problem = _explain(item["type"], loc, lines, model, item)
        line = lines.get(path) or lines.get(_in_file(path, lines), 1)
        found.setdefault(f"{source}:{line}: {_show(path)}: {problem}", line)
    return sorted(found, key=found.__getitem__)


def _explain(
    kind: str, loc: KeyPath, lines: Lines, model: type[BaseModel], item: Any
) -> tuple[KeyPath, str]:
    """The key path to report and the problem in words."""
    path = _in_file(loc, lines)
    message = str(item["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":  # the unknown key is in the file, so it ends ``path``
        return path, "unknown key" + _did_you_mean(str(loc[-1]), _keys_of(model, loc[:-1]))
    if kind == "missing":  # the key is not in the file: ``path`` ends at its mapping
        return (*path, loc[-1]), "required key is missing"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        key = str(item["ctx"]["discriminator"]).strip("'")
        options = _tags(model, loc)
        if kind == "union_tag_not_found":
            return (*path, key), f"required key is missing (one of {', '.join(options)})"
        tag = str(item["ctx"]["tag"])
        return (*path, key), f"unknown {key} {tag!r}, expected one of {', '.join(options)}" + (
            _did_you_mean(tag, options)
        )
    if kind in ("literal_error", "enum"):  # a Literal or an Enum: the same hint
        options = _quoted(str(item["ctx"]["expected"]))
        given = item["input"]
        hint = _did_you_mean(given, options) if isinstance(given, str) else ""
        return path, message + hint
    return path, message


def _quoted(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)


def _did_you_mean(given: str, options: list[str]) -> str:
    folded = {option.casefold(): option for option in options}
    close = difflib.get_close_matches(given.casefold(), list(folded), n=1, cutoff=0.6)
    return f" (did you mean {folded[close[0]]!r}?)" if close else ""


def _keys_of(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """The keys allowed in the mapping at ``loc`` (empty when it cannot be told)."""
    target = _type_at(model, loc)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return [field.alias or name for name, field in target.model_fields.items()]
    return []


def _tags(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """The ``type`` values of the discriminated union at ``loc``."""
    found: list[str] = []
    for member in _members(_type_at(model, loc)):
        field = member.model_fields.get("type")
        if field is not None:
            found += [str(value) for value in get_args(field.annotation)]
    return found


def _strip(annotation: Any) -> Any:
    """Drop Annotated[...] and Optional's None."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _strip(members[0])
    return annotation


def _members(annotation: Any) -> list[type[BaseModel]]:
    annotation = _strip(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for m in map(_strip, get_args(annotation)) if _is_model(m)]
    return [annotation] if _is_model(annotation) else []


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _type_at(model: type[BaseModel], loc: KeyPath) -> Any:
    """The annotation of the value at ``loc``, following fields, list items and union tags."""
    current: Any = model
    for part in loc:
        current = _strip(current)
        origin = get_origin(current)
        if _is_model(current) and isinstance(part, str):
            fields = {f.alias or n: f for n, f in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[part].annotation
        elif origin is list and isinstance(part, int):
            current = get_args(current)[0]
        elif origin in (Union, types.UnionType):
            current = next((m for m in _members(current) if _tag_matches(m, part)), None)
        else:
            return None
    return _strip(current)


def _tag_matches(member: type[BaseModel], part: str | int) -> bool:
    field = member.model_fields.get("type")
    tags = get_args(field.annotation) if field is not None else ()
    return part == member.__name__ or part in tags
