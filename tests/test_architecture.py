"""Architecture rules as code: the logic modules stay free of the frameworks around them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


RULES = [
    # (modules, forbidden import prefixes, why)
    (["mock_radius/engine.py", "mock_radius/scenario.py", "mock_radius/matching.py",
      "mock_radius/recording.py"], ["twisted"], "the mock's logic is driven without a reactor"),
    (list(map(str, (ROOT / "server" / "mfa").glob("*.py"))), ["starlette", "uvicorn"],
     "MFA logic knows no HTTP"),
    (list(map(str, (ROOT / "server" / "store").glob("*.py"))),
     ["starlette", "uvicorn", "server.mfa", "server.app", "server.service"],
     "the store knows neither the HTTP layer nor the MFA logic"),
    (["server/service.py"], ["starlette", "uvicorn"], "the login flow knows no HTTP"),
    (list(map(str, (ROOT / "server").rglob("*.py"))), ["mock_radius"],
     "the server never depends on its test double"),
]  # fmt: skip


@pytest.mark.parametrize(("modules", "forbidden", "why"), RULES, ids=[r[2] for r in RULES])
def test_layering(modules: list[str], forbidden: list[str], why: str) -> None:
    assert modules
    for module in modules:
        path = ROOT / module
        bad = sorted(
            name for name in imports_of(path) if any(name.startswith(f) for f in forbidden)
        )
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}: {why}"
