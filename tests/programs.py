"""The two programs as their console scripts start them, read from pyproject.toml's
[project.scripts]: tests start what an install starts, whatever the modules are named."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def script(name: str) -> str:
    """What the console script ``name`` runs (``mfa-server``, ``mock-radius``)."""
    module, _, function = SCRIPTS[name].partition(":")
    return f"import sys\nfrom {module} import {function}\nsys.exit({function}())\n"


def command(name: str) -> list[str]:
    return [sys.executable, "-c", script(name)]


def launcher(name: str, folder: Path) -> list[str]:
    """A file named like the console script, for what reads the program's name from the
    command line (the image's health check, as ``python /usr/local/bin/mfa-server ...``)."""
    path = folder / name
    path.write_text(script(name))
    return [sys.executable, str(path)]
