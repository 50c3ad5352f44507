"""Configuration problems as ``file:line: key.path: problem``, one per line.

The form of compilers and of ``mock-radius validate``, so an editor can jump to the line. Line
numbers come from the composed YAML nodes; key paths keep only what is in the file (pydantic adds
union tags such as ``Radius`` to its locations); unknown keys and values get a did-you-mean.
The mock has its own loader of the same kind: the server never imports its test double.
"""

from __future__ import annotations

import difflib
import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

KeyPath = tuple[str | int, ...]
Lines = dict[KeyPath, int]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where PyYAML has it: ~3x

# Aliases can make a small file a huge (or endless) tree ("billion laughs"). A real
# configuration may repeat even a long list through an alias, but the repeats stay in
# proportion to the file; a bomb's grow exponentially. So the limit grows with the file.
MAX_ALIAS_VISITS = 100_000
ALIAS_VISITS_PER_NODE = 10

# A validator may point below the value it checked with this context key (a key path suffix),
# e.g. at the mfaProvider key of the identity provider that names an unknown provider.
BELOW = "below"


class ConfigError(Exception):
    """The configuration cannot be used; the message is meant for the operator as is."""


def load_yaml(text: str, source: str) -> tuple[Any, Lines]:
    """The document and the line (1-based) of every key path in it."""
    try:
        loader = _LOADER(text)
    except yaml.reader.ReaderError as exc:
        raise ConfigError(_reader_error(source, text, exc)) from None
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        raise ConfigError(_reader_error(source, text, exc)) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_syntax_error(source, exc)) from None
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the top level must be a mapping of keys")
    lines: Lines = {}
    try:
        duplicates = _walk(node, (), lines, (), _Visits())
    except _Unwalkable as exc:
        raise ConfigError(f"{source}:{exc.line}: {exc}") from None
    if duplicates:
        raise ConfigError("\n".join(f"{source}:{line}: {problem}" for line, problem in duplicates))
    return data, lines


class _Unwalkable(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _reader_error(source: str, text: str, exc: yaml.reader.ReaderError) -> str:
    line = text.count("\n", 0, exc.position) + 1
    return f"{source}:{line}: not valid YAML: character #x{exc.character:04x} is not allowed"


def _syntax_error(source: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    problem = exc.problem or "cannot be parsed"
    if exc.context and exc.context.startswith("while") and exc.context_mark is not None:
        opened = exc.context_mark.line + 1  # e.g. where the unclosed bracket was opened
        where = "here" if opened == line else f"on line {opened}"
        problem += f" ({exc.context} {where})"
    elif exc.context:
        problem = f"{exc.context} {problem}"
    return f"{source}:{line}: not valid YAML: {problem}"


class _Visits:
    """The nodes walked so far, and how often one was walked again (through an alias)."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.again = 0


def _walk(
    node: yaml.Node, path: KeyPath, lines: Lines, inside: tuple[yaml.Node, ...], visits: _Visits
) -> list[tuple[int, str]]:
    """Fill ``lines``; return the duplicate keys, which PyYAML would silently drop."""
    line_here = node.start_mark.line + 1
    if any(node is outer for outer in inside):
        raise _Unwalkable(f"{_show(path)}: an alias refers to a value that contains it", line_here)
    if id(node) in visits.seen:
        visits.again += 1
        if visits.again > MAX_ALIAS_VISITS + ALIAS_VISITS_PER_NODE * len(visits.seen):
            raise _Unwalkable(
                f"aliases expand to more than {MAX_ALIAS_VISITS} repeated values", line_here
            )
    else:
        visits.seen.add(id(node))
    lines.setdefault(path, line_here)
    inside = (*inside, node)
    duplicates: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            line = key.start_mark.line + 1
            if child in lines and isinstance(key, yaml.ScalarNode):
                first = lines[child]
                duplicates.append((line, f"{_show(child)}: duplicate key (first on line {first})"))
                continue
            lines[child] = line
            duplicates += _walk(value, child, lines, inside, visits)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            duplicates += _walk(item, (*path, index), lines, inside, visits)
    return duplicates


def _show(path: KeyPath) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return text.removeprefix(".") or "(top level)"


def _in_file(loc: KeyPath, lines: Lines) -> KeyPath:
    """The longest part of ``loc`` present in the file, skipping pydantic's union tags."""
    path: KeyPath = ()
    for part in loc:
        if (*path, part) in lines:
            path = (*path, part)
    return path


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
    if kind == "literal_error":
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
