"""The documentation stays true: the configuration reference is the one generated from the
models, its examples are valid values, and every relative link in README.md and docs/*.md
resolves inside the repository (a clone has nothing next to it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, TypeAdapter

from appgate_mfa_server import config
from appgate_mfa_server.config_reference import COMMAND, MissingDocumentation, render, slug

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MODELS = [
    m for m in vars(config).values()
    if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == config.__name__
    and not m.__name__.startswith("_")
]  # fmt: skip
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
NOT_FILES = ("http://", "https://", "mailto:")


def test_the_configuration_reference_is_generated_from_the_models() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == render(), f"docs/configuration.md is out of date: run {COMMAND}"


def test_every_key_of_every_model_is_in_the_reference() -> None:
    page = render()
    assert len(MODELS) >= 9
    for model in MODELS:
        for name, field in model.model_fields.items():
            assert f"| `{field.alias or name}` |" in page, f"{model.__name__}.{name}"


def test_a_field_without_a_description_stops_the_generator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    field = config.ApiVersions.model_fields["min"]
    monkeypatch.setattr(field, "description", None)
    with pytest.raises(MissingDocumentation, match=r"server\.apiVersions\.min has no description"):
        render()


@pytest.mark.parametrize(
    ("model", "name"),
    [(m, n) for m in MODELS for n in m.model_fields],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_every_example_is_a_valid_value(model: type[BaseModel], name: str) -> None:
    field = model.model_fields[name]
    annotation: Any = field.annotation
    if field.metadata:
        annotation = Annotated[(annotation, *field.metadata)]
    for example in field.examples or []:
        TypeAdapter(annotation).validate_python(example)


def _without_code(text: str) -> str:
    """Links inside fenced blocks and code spans are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def links(text: str) -> list[str]:
    text = _without_code(text)
    return LINK.findall(text) + REFERENCE.findall(text)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings (repeats get -1, -2, ...)."""
    found: set[str] = set()
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M):
        base = slug(heading)
        name, count = base, 0
        while name in found:
            count += 1
            name = f"{base}-{count}"
        found.add(name)
    return found


def link_problems(page: Path, root: Path) -> list[str]:
    problems: list[str] = []
    for target in links(page.read_text()):
        if target.startswith(NOT_FILES):
            continue
        path_part, _, anchor = target.partition("#")
        file = (page.parent / path_part).resolve() if path_part else page
        where = f"{page.relative_to(root)}: {target}"
        if not file.is_relative_to(root):
            problems.append(f"{where} points outside the repository")
        elif not file.exists():
            problems.append(f"{where} does not exist")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            problems.append(f"{where}: no heading with that anchor")
    return problems


def test_the_pages_are_found() -> None:
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}
    assert {"README.md", "docs/configuration.md", "docs/api.md", "docs/architecture.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve_inside_the_repository(page: Path) -> None:
    assert link_problems(page, ROOT) == []


def test_the_link_check_can_fail(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.md").write_text("# Title\n\n## Some `code` here\n")
    (tmp_path / "outside.md").write_text("# Outside\n")
    (root / "README.md").write_text(
        "[fine](docs/a.md#some-code-here) [also](#top) [web](https://example.com/x)\n"
        "[out](../outside.md) [gone](docs/b.md) [anchor](docs/a.md#nowhere)\n"
        "`[in code](nope.md)`\n\n# Top\n\n[ref]: docs/c.md\n"
    )
    assert link_problems(root / "README.md", root) == [
        "README.md: ../outside.md points outside the repository",
        "README.md: docs/b.md does not exist",
        "README.md: docs/a.md#nowhere: no heading with that anchor",
        "README.md: docs/c.md does not exist",
    ]


SKIP_DIRS = {
    ".git", ".venv", "venv", "build", "dist", "data", "node_modules", "__pycache__",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", ".benchmarks",
}  # fmt: skip


def test_nothing_refers_to_files_outside_the_repository() -> None:
    needle = re.compile(r"\.\./" + "shared" + r"\b|\bshared/(?:docs|vendor-spec|seed)\b")
    offenders: list[str] = []
    for path in ROOT.rglob("*"):
        if SKIP_DIRS & set(path.relative_to(ROOT).parts) or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if needle.search(text):
            offenders.append(path.relative_to(ROOT).as_posix())
    assert offenders == []
