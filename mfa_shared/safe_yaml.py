# -*- test-case-name: tests.test_config_errors, tests.test_mock_server -*-
"""YAML read safely, with the line of every key path: the one loader of the server's
configuration and of the mock's scenarios.

Safe means: PyYAML's safe loader (no Python objects), one document, a mapping at the top, no
duplicate keys (PyYAML would keep the last silently), no alias that contains itself, and a
bound on what aliases may repeat. Aliases can make a small file a huge tree ("billion
laughs": 0.5 KB that expand to gigabytes once walked or validated). A real file may repeat even
a long list through an alias, but the repeats stay in proportion to the file; a bomb's grow
exponentially. So the bound grows with the file.

Problems are ``file:line: problem`` lines, the form of compilers, so an editor can jump there.
"""

from __future__ import annotations

from typing import Any

import yaml

KeyPath = tuple[str | int, ...]
Lines = dict[KeyPath, int]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where PyYAML has it: ~3x

MAX_ALIAS_VISITS = 100_000
ALIAS_VISITS_PER_NODE = 10


class YamlProblem(Exception):
    """The text is no usable YAML mapping; the message is ``file:line: problem`` lines."""


def load_yaml(text: str, source: str) -> tuple[dict[str, Any], Lines]:
    """The top-level mapping and the line (1-based) of every key path in it."""
    try:
        loader = _LOADER(text)
    except yaml.reader.ReaderError as exc:
        raise YamlProblem(_reader_error(source, text, exc)) from None
    try:
        node = loader.get_single_node()
        # building shares the object of every aliased node, so it stays in proportion to the
        # file; walking (and validating) the tree is what a bomb makes huge
        data = None if node is None else loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        raise YamlProblem(_reader_error(source, text, exc)) from None
    except yaml.MarkedYAMLError as exc:
        raise YamlProblem(_syntax_error(source, exc)) from None
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict):
        raise YamlProblem(f"{source}:1: the top level must be a mapping of keys")
    lines: Lines = {}
    try:
        duplicates = _walk(node, (), lines, (), _Visits())
    except _Unwalkable as exc:
        raise YamlProblem(f"{source}:{exc.line}: {exc}") from None
    if duplicates:
        raise YamlProblem("\n".join(f"{source}:{line}: {problem}" for line, problem in duplicates))
    return data, lines


def show(path: KeyPath) -> str:
    """A key path as people write it: ``steps[0].match.userName``."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return text.removeprefix(".") or "(top level)"


def in_file(loc: tuple[Any, ...], lines: Lines) -> KeyPath:
    """The longest part of a validator's location present in the file, skipping what the file
    lacks (pydantic adds union member names such as ``str`` or ``Radius`` to its locations)."""
    path: KeyPath = ()
    for part in loc:
        if (*path, part) in lines:
            path = (*path, part)
    return path


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
    """Fill ``lines``; return the duplicate keys."""
    line_here = node.start_mark.line + 1
    if any(node is outer for outer in inside):
        raise _Unwalkable(f"{show(path)}: an alias refers to a value that contains it", line_here)
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
                duplicates.append((line, f"{show(child)}: duplicate key (first on line {first})"))
                continue
            lines[child] = line
            duplicates += _walk(value, child, lines, inside, visits)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            duplicates += _walk(item, (*path, index), lines, inside, visits)
    return duplicates
