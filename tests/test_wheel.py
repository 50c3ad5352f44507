"""A normal install works from anywhere: build the wheel, install it into a fresh virtual
environment and run both programs from another folder; a client project runs its tests with
the pytest plugins, the documentation's examples among them.

The project must come from the wheel, not from this checkout or an editable install, so the
test proves where every module and the scenarios were imported from. It stays offline: the
wheel is built without build isolation (setuptools and wheel are test extras) and the new
environment sees the dependencies of this interpreter through a .pth file. The import names
are read from the wheel, not written here, so the checks hold whatever they are.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import http_call, http_login, wait_for_ready_line
from tests.doc_examples import examples

REPO = Path(__file__).resolve().parent.parent
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "data", "*.egg-info", "__pycache__", ".*cache",
    ".hypothesis", ".benchmarks", "tests", "bench", "docs",
)  # fmt: skip
DISTRIBUTION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
pytestmark = pytest.mark.slow  # a wheel built, a virtual environment made, programs started
PROBE = """
import importlib, importlib.metadata, json, sys
from mock_radius_scenarios import locate
dist = importlib.metadata.distribution(sys.argv[1])
print(json.dumps({
    "modules": [importlib.import_module(name).__file__ for name in sys.argv[2:]],
    "scenarios": str(locate(None)),
    "distribution": str(dist.locate_file("")),
    "directUrl": json.loads(dist.read_text("direct_url.json") or "{}"),
    "sysPath": sys.path,
    "finders": [type(f).__module__ if not isinstance(f, type) else f.__module__
                for f in sys.meta_path],
}))
"""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path
    site_packages: Path
    elsewhere: Path  # a working folder outside the checkout
    env: dict[str, str]

    def names(self) -> list[str]:
        """What the wheel puts at the top of site-packages: packages and modules."""
        top = {name.split("/")[0] for name in zipfile.ZipFile(self.wheel).namelist()}
        return sorted(name.removesuffix(".py") for name in top if not name.endswith(".dist-info"))

    def packages(self) -> list[str]:
        return [name for name in self.names() if not name.startswith("pytest_")]


def _require_build_backend() -> None:
    """Fail (not skip) with the fix when the offline build cannot work here."""
    try:
        setuptools = tuple(int(p) for p in importlib.metadata.version("setuptools").split(".")[:2])
        importlib.metadata.version("wheel")
    except importlib.metadata.PackageNotFoundError:
        setuptools = (0, 0)
    if setuptools < (69, 0):
        pytest.fail("building the wheel needs setuptools>=69 and wheel: pip install -e '.[test]'")


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    _require_build_backend()
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "--quiet", "--wheel-dir", str(dist), str(source)])  # fmt: skip
    (wheel,) = dist.glob("appgate_mfa_reference-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    site_packages = Path(purelib.stdout.strip())
    # The dependencies come from this interpreter's site-packages (and any such folder a .pth
    # file put on its path), added as plain paths: the .pth files there (an editable install
    # of this project among them) are not run.
    on_path = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    ours = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], *on_path]
    (site_packages / "_test_dependencies.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "--quiet", str(wheel)])  # fmt: skip
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "MFA_SERVER_CONFIG"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONNOUSERSITE"] = "1"
    yield Installed(wheel, venv / "bin", site_packages, elsewhere, env)


def test_the_wheel_holds_every_shipped_scenario(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    (folder,) = {name.rpartition("/")[0] for name in names if name.endswith("/challenge.yaml")}
    shipped = {path.name for path in (REPO / "scenarios").glob("*.yaml")}
    assert len(shipped) == 15
    assert {f"{folder}/{name}" for name in shipped} <= names
    assert f"{folder}/__init__.py" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def _package_dirs() -> dict[str, str]:
    """Folder of the checkout -> where the wheel puts it (pyproject's package-dir; a folder
    it does not map keeps its name)."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {folder: package.replace(".", "/")
            for package, folder in setuptools.get("package-dir", {}).items()}  # fmt: skip


def test_the_wheel_holds_every_module_of_the_checkout(installed: Installed) -> None:
    """Every .py of the installed folders, subpackages included (a list of packages in
    pyproject.toml must not forget one)."""
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    mapped = _package_dirs()
    unmapped = [name for name in installed.packages() if name not in mapped.values()]
    folders = [REPO / folder for folder in [*mapped, *unmapped]]
    sources = [path for folder in folders for path in folder.rglob("*.py")]
    assert len(sources) > 50
    for path in sources:
        relative = path.relative_to(REPO)
        top = relative.parts[0]
        expected = Path(mapped.get(top, top), *relative.parts[1:]).as_posix()
        assert expected in names, f"{relative} is not in the wheel (as {expected})"


def test_the_project_is_imported_from_the_wheel(installed: Installed) -> None:
    probe = _run([str(installed.bin / "python"), "-c", PROBE, DISTRIBUTION, *installed.names()],
                 cwd=installed.elsewhere, env=installed.env)  # fmt: skip
    found = json.loads(probe.stdout)
    for file in [*found["modules"], found["scenarios"]]:
        assert Path(file).is_relative_to(installed.site_packages), file
    assert Path(found["distribution"]) == installed.site_packages
    assert "archive_info" in found["directUrl"]  # installed from a file, not editable
    assert "dir_info" not in found["directUrl"]
    # no other place on the path holds the project (the dependencies' may be inside the
    # checkout, in .venv), and no editable install's finder is active
    for entry in found["sysPath"]:  # "" is the working folder, elsewhere
        folder = (installed.elsewhere / entry).resolve()
        if folder != installed.site_packages.resolve():
            for package in installed.packages():
                assert not (folder / package / "__init__.py").exists(), folder
    assert not [name for name in found["finders"] if "editable" in name]


def test_mfa_server_demo_answers_a_radius_challenge_from_another_folder(
    installed: Installed,
) -> None:
    process = subprocess.Popen(
        [str(installed.bin / "mfa-server"), "--port", "0"],
        cwd=installed.elsewhere,
        env=installed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = wait_for_ready_line(process.stdout, timeout=30)
        assert set(ready["mockRadius"]) == {"port", "controlPort"}
        url = f"http://127.0.0.1:{ready['port']}"
        token = http_login(httpx, url, "radius-challenge", "carol", "carol-pass")
        init = http_call(httpx, url, "/admin/authentication/otp/initialize", token,
                         {"userPassword": "carol-pass"})  # fmt: skip
        assert init.status_code == 200, init.text
        body = init.json()
        assert body["type"] == "Challenge"
        assert body["responseMessage"] == "Enter the code shown on your token"
        assert body["state"] and body["timeout"] == 6
        for path, kind in (("/", "text/html"), ("/demo.js", "text/javascript")):  # package data
            asset = httpx.get(url + path)
            assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    assert process.returncode == 0
    assert (installed.elsewhere / "data" / "mfa.db").exists()  # the data folder is the cwd's


def test_mock_radius_serves_the_shipped_scenarios_from_another_folder(
    installed: Installed,
) -> None:
    process = subprocess.Popen(
        [str(installed.bin / "mock-radius"), "serve", "--port", "0"],
        cwd=installed.elsewhere,
        env=installed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = wait_for_ready_line(process.stdout, timeout=30)
        assert len(ready["scenarios"]) == 15 and "challenge" in ready["scenarios"]
        health = httpx.get(f"http://127.0.0.1:{ready['controlPort']}/health").json()
        assert health["status"] == "ok" and health["scenarios"] == 15
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    assert process.returncode == 0


# The client projects below run pytest in the new environment, as a client developer would:
# the plugins come from the wheel's entry points.

ACCEPT = {"Accept": "application/vnd.appgate.peer-v22+json"}


def _client_pytest(installed: Installed, folder: Path, *args: str) -> str:
    result = subprocess.run(
        [str(installed.bin / "python"), "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=folder, env=installed.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def _readme_example() -> str:
    section = (REPO / "README.md").read_text().split("### pytest plugin for client tests")[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_a_client_project_runs_the_documented_plugin_examples(
    installed: Installed, tmp_path: Path
) -> None:
    """docs/pytest-plugins.md's examples and the README's, each as a test module of a client
    project: they pass from the wheel as written (a shipped scenario by name included)."""
    project = tmp_path / "client"
    project.mkdir()
    documented = examples(REPO / "docs" / "pytest-plugins.md")
    assert set(documented) == {"pytest-radius-client", "pytest-server-and-mock"}
    for name, code in documented.items():
        (project / f"test_{name.replace('-', '_')}.py").write_text(code)
    (project / "test_readme_example.py").write_text(_readme_example())
    output = _client_pytest(installed, project, "-q")
    assert output.splitlines()[-1].startswith("4 passed"), output


def test_pytest_lists_the_fixtures_with_their_documentation(
    installed: Installed, tmp_path: Path
) -> None:
    output = _client_pytest(installed, tmp_path, "--fixtures", "-q")
    plugins = {
        "pytest_appgate_mfa_server": ["mfa_server_factory", "mfa_server"],
        "pytest_mock_radius": ["mock_radius_factory", "mock_radius"],
    }
    for plugin, fixtures in plugins.items():
        section = output.split(f" fixtures defined from {plugin} ")[1].split("\n----")[0]
        for fixture in fixtures:
            assert f"\n{fixture} -- " in section, fixture
        assert "no docstring available" not in section
    assert "Starts reference servers, each an 'mfa-server --test-control' process" in output
    assert "Starts mock RADIUS servers, each a 'mock-radius serve' process" in output


def test_the_plugins_import_nothing_of_the_project(installed: Installed) -> None:
    probe = (
        "import json, sys\n"
        "import pytest_appgate_mfa_server, pytest_mock_radius\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    python = str(installed.bin / "python")
    loaded = json.loads(
        _run([python, "-c", probe], cwd=installed.elsewhere, env=installed.env).stdout
    )
    assert set(installed.packages()).isdisjoint(loaded)
    assert {"pytest_appgate_mfa_server", "pytest_mock_radius"} <= set(loaded)


CLIENT_TEST = """\
import httpx
import pytest

import scenarios
import server

ACCEPT = {"Accept": "application/vnd.appgate.peer-v22+json"}


def test_the_project_modules_are_its_own():
    assert (server.WHOSE, scenarios.WHOSE) == ("the client's", "the client's")


def test_the_server_fixture(mfa_server):
    names = httpx.get(mfa_server.url + "/admin/identity-providers/names", headers=ACCEPT)
    assert names.json()["data"][0] == {"name": "local", "type": "Credentials"}


@pytest.mark.mock_radius("reject")
def test_the_mock_fixture(mock_radius):
    listing = mock_radius.control.scenarios()
    assert [scenario["name"] for scenario in listing["scenarios"]] == ["reject"]
"""


def test_a_client_project_with_its_own_server_and_scenarios_modules(
    installed: Installed, tmp_path: Path
) -> None:
    """The issue's case: a project with a server.py and a scenarios.py of its own runs
    `python -m pytest` with both plugins' fixtures; and the wheel installs no package that a
    client's own distribution of those names would clobber."""
    assert not {"server", "scenarios"} & set(installed.names())
    project = tmp_path / "client"
    project.mkdir()
    for module in ("server", "scenarios"):
        (project / f"{module}.py").write_text('WHOSE = "the client\'s"\n')
    (project / "test_client.py").write_text(CLIENT_TEST)
    output = _client_pytest(installed, project, "-q")
    assert output.splitlines()[-1].startswith("3 passed"), output
