"""A normal install works from anywhere: build the wheel, install it into a fresh virtual
environment and run both programs from another folder.

The project must come from the wheel, not from this checkout or an editable install, so the
test proves where every module and the scenarios were imported from. It stays offline: the
wheel is built without build isolation (setuptools and wheel are test extras) and the new
environment sees the dependencies of this interpreter through a .pth file.
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
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import http_call, http_login, wait_for_json_line

REPO = Path(__file__).resolve().parent.parent
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "data", "*.egg-info", "__pycache__", ".*cache",
    ".hypothesis", ".benchmarks", "tests", "bench", "docs",
)  # fmt: skip
PROBE = """
import importlib.metadata, json, sys
import mock_radius, scenarios, server
dist = importlib.metadata.distribution("appgate-mfa-reference")
print(json.dumps({
    "modules": [server.__file__, mock_radius.__file__, scenarios.__file__],
    "scenarios": str(scenarios.shipped_scenarios()),
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
    # The dependencies come from this interpreter's site-packages, added as plain paths: the
    # .pth files there (an editable install of this project among them) are not run.
    ours = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
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
    shipped = {f"scenarios/{path.name}" for path in (REPO / "scenarios").glob("*.yaml")}
    assert len(shipped) == 15
    assert shipped <= names
    assert "scenarios/__init__.py" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_the_project_is_imported_from_the_wheel(installed: Installed) -> None:
    probe = _run([str(installed.bin / "python"), "-c", PROBE], cwd=installed.elsewhere,
                 env=installed.env)  # fmt: skip
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
            for package in ("server", "mock_radius", "scenarios"):
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
        ready = wait_for_json_line(process.stdout, "port", timeout=30)
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
        ready = wait_for_json_line(process.stdout, "controlPort", timeout=30)
        assert len(ready["scenarios"]) == 15 and "challenge" in ready["scenarios"]
        health = httpx.get(f"http://127.0.0.1:{ready['controlPort']}/health").json()
        assert health["status"] == "ok" and health["scenarios"] == 15
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    assert process.returncode == 0
