# -*- test-case-name: tests.test_mock_scenarios, tests.test_wheel -*-
"""The shipped RADIUS scenarios (*.yaml), installed as package data of this folder.

An installed wheel has no checkout around it, so the programs find these files through the
import system rather than relative to their own source files.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_scenarios() -> Path:
    """The folder of the shipped scenarios, whether installed, editable or a checkout."""
    return Path(str(resources.files(__name__)))


class UnknownScenarios(ValueError):
    """Neither a file nor a folder, nor the name of a shipped scenario."""


def locate(scenarios: str | Path | None) -> Path:
    """What to serve: a file or a folder as given, else the shipped scenario of that name
    (``"challenge"``, so an install without a checkout can name one); None: every shipped
    scenario. The command line and the pytest plugin both resolve names here."""
    if scenarios is None:
        return shipped_scenarios()
    path = Path(scenarios)
    if path.exists():
        return path
    shipped = {file.stem: file for file in shipped_scenarios().glob("*.yaml")}
    if isinstance(scenarios, str) and scenarios in shipped:
        return shipped[scenarios]
    raise UnknownScenarios(
        f"{scenarios}: no such file or folder, and no shipped scenario of that name "
        f"(shipped: {', '.join(sorted(shipped))})"
    )
