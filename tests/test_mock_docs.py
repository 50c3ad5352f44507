"""The mock's documentation says what the code does: every outcome, every option and default."""

from __future__ import annotations

import re
from pathlib import Path

from mock_radius import cli
from mock_radius.outcome import Outcome

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "mock-radius.md").read_text()


def _table_rows(text: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_every_outcome_is_documented_with_its_meaning() -> None:
    rows = _table_rows(DOC, "outcome")
    assert [(r[0].strip("`"), r[1]) for r in rows] == [(o.value, o.meaning) for o in Outcome]


def test_every_serve_option_is_documented_with_its_default() -> None:
    serve = next(
        action.choices["serve"]  # type: ignore[index]
        for action in cli._parser()._actions
        if getattr(action, "choices", None) and "serve" in action.choices  # type: ignore[operator]
    )
    options = {
        a.option_strings[0]: a.default for a in serve._actions if a.option_strings[0] != "-h"
    }
    rows = {r[0].strip("`").split()[0]: r[1] for r in _table_rows(DOC, "option")}
    assert set(rows) == set(options)
    for option, default in options.items():
        if option in (
            "--scenarios",
            "--client",
            "--scenario",
            "--journal-file",
            "--seed",
            "--recv-buffer",
        ):
            continue  # described in words
        documented = rows[option]
        if isinstance(default, bool):  # a flag
            assert documented == ("on" if default else "off"), option
        elif isinstance(default, int | float):
            assert float(documented) == default, option
        else:
            assert documented == default, option


def test_the_readme_points_to_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The mock RADIUS server") : readme.index("## Development")]
    assert "docs/mock-radius.md" in section and "docs/scenarios.md" in section
    assert "catch-all" in section  # the script rules, with the example
