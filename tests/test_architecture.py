"""Architecture rules as code: the logic modules stay free of the frameworks around them."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A folder installed under another import name (pyproject.toml's package-dir) is that package.
_SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
PACKAGE_DIR: dict[str, str] = _SETUPTOOLS.get("package-dir", {})
PACKAGE_OF_FOLDER = {folder: package for package, folder in PACKAGE_DIR.items()}


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports made absolute, and each imported name
    as a module too (``from a import b`` imports ``a.b``)."""
    tree = ast.parse(path.read_text())
    parts = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    if parts:
        parts[0] = PACKAGE_OF_FOLDER.get(parts[0], parts[0])
    package = ".".join(parts)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


RULES = [
    # (modules, forbidden import prefixes, why)
    (["mock_radius/engine.py", "mock_radius/scenario.py", "mock_radius/matching.py",
      "mock_radius/recording.py", "mock_radius/request_view.py", "mock_radius/replies.py",
      "mock_radius/faults.py", "mock_radius/rendering.py"], ["twisted"],
     "the mock's logic is driven without a reactor"),
    (list(map(str, (ROOT / "radius_codec").rglob("*.py"))),
     ["appgate_mfa_server", "server", "mock_radius", "scenarios", "twisted", "asyncio",
      "starlette", "uvicorn"],
     "the RADIUS codec sits below the server and the mock (both use it) and needs no loop"),
    (list(map(str, (ROOT / "server" / "mfa").glob("*.py"))), ["starlette", "uvicorn"],
     "MFA logic knows no HTTP"),
    (list(map(str, (ROOT / "server" / "store").glob("*.py"))),
     ["starlette", "uvicorn", "appgate_mfa_server.mfa", "appgate_mfa_server.app",
      "appgate_mfa_server.service"],
     "the store knows neither the HTTP layer nor the MFA logic"),
    (["server/service.py"], ["starlette", "uvicorn"], "the login flow knows no HTTP"),
    (list(map(str, (ROOT / "server").rglob("*.py"))), ["mock_radius"],
     "the server never depends on its test double"),
    (list(map(str, (ROOT / "mfa_shared").rglob("*.py"))),
     ["server", "mock_radius", "scenarios", "twisted", "starlette", "uvicorn"],
     "what the server and the mock share depends on neither, nor on their frameworks"),
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


def test_relative_imports_are_seen() -> None:
    """The rule above cannot be dodged with ``from ..mock_radius import x``."""
    probe = ROOT / "server" / "mfa" / "_probe_for_the_test.py"
    probe.write_text("from ..store import base\nfrom . import radius\nfrom .. import app\n")
    try:
        assert {
            "appgate_mfa_server.store",
            "appgate_mfa_server.store.base",
            "appgate_mfa_server.mfa.radius",
            "appgate_mfa_server.app",
        } <= (imports_of(probe))
    finally:
        probe.unlink()


def test_the_server_runs_its_test_double_only_as_a_process_of_the_demo() -> None:
    """The demo starts `python -m mock_radius` (a process, never an import); no other server
    module may name the mock at all."""

    def names_the_mock(path: Path) -> bool:
        return any(
            isinstance(node, ast.Constant) and node.value in ("mock_radius", "mock-radius")
            for node in ast.walk(ast.parse(path.read_text()))
        ) or any(name.startswith("mock_radius") for name in imports_of(path))

    naming = sorted(
        str(path.relative_to(ROOT)) for path in (ROOT / "server").rglob("*.py")
        if names_the_mock(path)
    )  # fmt: skip
    assert naming == ["server/demo_radius.py"]
    assert not any(n.startswith("mock_radius") for n in imports_of(ROOT / "server/demo_radius.py"))


def test_the_codec_has_a_test_module_per_module() -> None:
    """A newcomer finds the tests of radius_codec/X.py in tests/radius_codec/test_X.py."""
    modules = {path.stem for path in (ROOT / "radius_codec").glob("*.py")} - {"__init__"}
    tests = {
        path.stem.removeprefix("test_") for path in (ROOT / "tests/radius_codec").glob("test_*.py")
    }
    assert modules and modules == tests


def test_test_case_names_name_test_modules() -> None:
    """A module whose tests are not found by its name says where they are (Twisted's
    ``# -*- test-case-name: tests.test_x -*-`` first line); every name must be a test module."""
    pointers = 0
    folders = {PACKAGE_DIR.get(name, name) for name in _SETUPTOOLS["packages"] if "." not in name}
    for path in [path for folder in folders for path in (ROOT / folder).rglob("*.py")]:
        first = path.read_text().partition("\n")[0]
        if "test-case-name:" not in first:
            continue
        names = first.split("test-case-name:")[1].removesuffix("-*-").split(",")
        for name in names:
            target = ROOT.joinpath(*name.strip().split(".")).with_suffix(".py")
            assert target.is_file(), f"{path.relative_to(ROOT)} names {name.strip()}"
            pointers += 1
    assert pointers
