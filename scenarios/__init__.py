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
