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


def module_of(path: Path, root: Path = ROOT) -> str:
    """The import name of a project file (``server/app.py`` is ``appgate_mfa_server.app``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    parts[0] = PACKAGE_OF_FOLDER.get(parts[0], parts[0])
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path, root: Path = ROOT) -> str:
    """The package a relative import in ``path`` starts from."""
    module = module_of(path, root)
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """Every module ``path`` imports, relative imports made absolute, and each imported name
    as a module too (``from a import b`` imports ``a.b``)."""
    tree = ast.parse(path.read_text())
    package = package_of(path, root)
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


def project_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


SERVER = "appgate_mfa_server"
# The places that compose the server from its parts: the command line and the app factory.
COMPOSITION = ["server/__main__.py", "server/app.py"]
# Beside the composition, what a production module of the server may not import: test control
# is a layer put in front of the server, known to nothing beneath it.
WITHOUT_TEST_CONTROL = [
    str(path) for path in project_files("server")
    if "testcontrol" not in path.parts and str(path.relative_to(ROOT)) not in COMPOSITION
]  # fmt: skip
HTTP_LAYER = [f"{SERVER}.{m}" for m in ("app", "schemas", "http_input", "responses", "edge",
              "cancelled", "demo_page", "http_guard", "runner")]  # fmt: skip
SERVICE_LAYER = ["server/service.py", "server/lockout.py", "server/push_limit.py",
                 "server/push_join.py", "server/keys.py"]  # fmt: skip

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
    (SERVICE_LAYER, ["starlette", "uvicorn", *HTTP_LAYER],
     "the login flow takes plain values: the HTTP layer parses the bodies"),
    (WITHOUT_TEST_CONTROL, [f"{SERVER}.testcontrol"],
     "test control is wired in by the composition points only"),
    (list(map(str, (ROOT / "server").rglob("*.py"))), ["mock_radius"],
     "the server never depends on its test double"),
    (list(map(str, (ROOT / "mfa_shared").rglob("*.py"))),
     ["server", "mock_radius", "scenarios", "twisted", "starlette", "uvicorn"],
     "what the server and the mock share depends on neither, nor on their frameworks"),
    ([str(path) for path in project_files("server", "mock_radius", "mfa_shared", "radius_codec")
      if path != ROOT / "radius_codec" / "dictionary.py"], ["pyrad"],
     "RADIUS is radius_codec's: pyrad is its dictionary reader, in radius_codec/dictionary.py"),
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


def _probe(root: Path, relative: str, text: str) -> Path:
    """A module written at ``relative`` under ``root`` (a temporary folder standing for the
    repository), so the rules' readers can be tested without writing into the checkout."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_relative_imports_are_seen(tmp_path: Path) -> None:
    """The rule above cannot be dodged with ``from ..mock_radius import x``."""
    text = "from ..store import base\nfrom . import radius\nfrom .. import app\n"
    probe = _probe(tmp_path, "server/mfa/probe.py", text)
    assert {
        "appgate_mfa_server.store",
        "appgate_mfa_server.store.base",
        "appgate_mfa_server.mfa.radius",
        "appgate_mfa_server.app",
    } <= imports_of(probe, tmp_path)


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


PROJECT_FOLDERS = ("server", "mock_radius", "mfa_shared", "radius_codec", "scenarios")
PROJECT_MODULES = {module_of(path) for path in project_files(*PROJECT_FOLDERS)}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(path: Path, root: Path = ROOT) -> list[str]:
    """The private names (``_x``) of other project modules that ``path`` reaches: imported
    (``from m import _x``) or read off an imported module (``m._x``)."""
    tree = ast.parse(path.read_text())
    package = package_of(path, root)
    tops = {module.split(".")[0] for module in PROJECT_MODULES}
    modules: dict[str, str] = {}  # a local name -> the project module it stands for
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in PROJECT_MODULES and alias.asname:
                    modules[alias.asname] = alias.name
                elif alias.name.split(".")[0] in tops:
                    top = alias.name.split(".")[0]
                    modules[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, *([base] if base else [])])
            if base.split(".")[0] not in tops:
                continue
            for alias in node.names:
                if _is_private(alias.name):
                    found.append(f"{base}.{alias.name}")
                elif f"{base}.{alias.name}" in PROJECT_MODULES:
                    modules[alias.asname or alias.name] = f"{base}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            chain = _dotted(node.value)
            if chain is None:
                continue
            head, _, rest = chain.partition(".")
            if head in modules:
                module = ".".join(filter(None, (modules[head], rest)))
                if module in PROJECT_MODULES:
                    found.append(f"{module}.{node.attr}")
    return sorted(found)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


@pytest.mark.parametrize(
    "path", project_files("server", "mock_radius", "mfa_shared", "radius_codec"), ids=str
)
def test_no_module_reaches_for_another_modules_private_names(path: Path) -> None:
    """A name with a leading underscore is its module's own business: what another module
    needs gets a public name (and with it, a promise)."""
    used = private_uses(path)
    assert not used, f"{path.relative_to(ROOT)} uses private names of other modules: {used}"


def test_private_uses_are_seen(tmp_path: Path) -> None:
    """The rule above sees every way of reaching a private name, relative imports included."""
    probe = _probe(
        tmp_path,
        "server/mfa/probe.py",
        "from ..schemas import _Hidden\n"
        "from appgate_mfa_server import logs\n"
        "from .. import errors as e\n"
        "import appgate_mfa_server.tokens\n"
        "import mfa_shared.safe_yaml as y\n"
        "x = logs._hidden, e._hidden, appgate_mfa_server.tokens._hidden, y._hidden\n"
        "self_is_fine = object()._own, logs.SINK._stream_is_an_object_not_a_module\n",
    )
    assert private_uses(probe, tmp_path) == [
        "appgate_mfa_server.errors._hidden",
        "appgate_mfa_server.logs._hidden",
        "appgate_mfa_server.schemas._Hidden",
        "appgate_mfa_server.tokens._hidden",
        "mfa_shared.safe_yaml._hidden",
    ]


def hand_written_errors(path: Path) -> list[int]:
    """The lines of ``path`` that write an error's shape themselves: an ``ApiError`` built
    from a status, or a dict with ``"id"`` and ``"message"``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name == "ApiError" and node.args:
                lines.append(node.lineno)
        elif isinstance(node, ast.Dict):
            keys = {key.value for key in node.keys if isinstance(key, ast.Constant)}
            if {"id", "message"} <= keys:
                lines.append(node.lineno)
    return lines


def test_every_error_of_the_api_is_written_in_errors_py_only() -> None:
    """Each error's status, id and message live in server/errors.py, once; everyone else
    builds from its functions."""
    found = {
        str(path.relative_to(ROOT)): hand_written_errors(path)
        for path in project_files("server")
        if path.name != "errors.py"
    }
    assert {name: lines for name, lines in found.items() if lines} == {}
    probe = ast.parse('errors.ApiError(502, "x", "y")\nbody = {"id": "x", "message": "y"}\n')
    assert len([n for n in ast.walk(probe) if isinstance(n, ast.Call | ast.Dict)]) == 2


def test_the_codec_has_a_test_module_per_module() -> None:
    """A newcomer finds the tests of radius_codec/X.py in tests/radius_codec/test_X.py."""
    modules = {path.stem for path in (ROOT / "radius_codec").glob("*.py")} - {"__init__"}
    tests = {
        path.stem.removeprefix("test_") for path in (ROOT / "tests/radius_codec").glob("test_*.py")
    }
    assert modules and modules == tests


def pointed_tests(path: Path) -> list[str]:
    """The test modules named on ``path``'s first line (Twisted's
    ``# -*- test-case-name: tests.test_x, tests.test_y -*-``)."""
    first = path.read_text().partition("\n")[0]
    if "test-case-name:" not in first:
        return []
    names = first.split("test-case-name:")[1].strip().removesuffix("-*-").split(",")
    return [name.strip() for name in names]


def namesake_tests(path: Path) -> list[Path]:
    """The test modules found by ``path``'s name: ``tests/.../test_X.py`` for ``X.py``, and for
    the mock's modules also ``tests/test_mock_X.py``."""
    stem = path.parent.name if path.name == "__init__.py" else path.stem
    names = (
        {f"test_{stem}.py", f"test_mock_{stem}.py"}
        if "mock_radius" in path.parts
        else {f"test_{stem}.py"}
    )
    return [test for test in (ROOT / "tests").rglob("test_*.py") if test.name in names]


def code_modules() -> list[Path]:
    """Every module of the distribution with code in it (an ``__init__.py`` that is only a
    docstring is not)."""
    folders = {PACKAGE_DIR.get(name, name) for name in _SETUPTOOLS["packages"] if "." not in name}
    paths = [path for folder in folders for path in (ROOT / folder).rglob("*.py")]
    paths += [ROOT / f"{name}.py" for name in _SETUPTOOLS.get("py-modules", [])]
    return sorted(
        path
        for path in paths
        if not (path.name == "__init__.py" and len(ast.parse(path.read_text()).body) <= 1)
    )


@pytest.mark.parametrize("path", code_modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_module_leads_to_its_tests(path: Path) -> None:
    """A newcomer finds the tests of ``X.py`` by name (``tests/.../test_X.py``), or ``X.py``
    names them on its first line; every name given there is a test module."""
    named = pointed_tests(path)
    for name in named:
        target = ROOT.joinpath(*name.split(".")).with_suffix(".py")
        assert target.is_file() and target.name.startswith("test_"), f"names {name}"
    assert named or namesake_tests(path), "no tests/.../test_X.py and no test-case-name line"


def test_the_rule_above_sees_a_module_without_tests(tmp_path: Path) -> None:
    probe = _probe(tmp_path, "mfa_shared/probe_without_tests.py", '"""Nobody tests it."""\nX = 1\n')
    assert not pointed_tests(probe) and not namesake_tests(probe)
    pointed = _probe(tmp_path, "mfa_shared/pointed.py", "# -*- test-case-name: tests.test_x -*-\n")
    assert pointed_tests(pointed) == ["tests.test_x"]
    # a module without a namesake, and one with, from the checkout itself
    assert ROOT / "server" / "users.py" in code_modules()
    assert not namesake_tests(ROOT / "server" / "users.py")
    assert namesake_tests(ROOT / "server" / "lockout.py") == [ROOT / "tests" / "test_lockout.py"]
