"""The pytest plugins as a client project meets them: modules that import nothing of the
project until a fixture is used, fixtures that take a shipped scenario by name, and a reference
page (docs/pytest-plugins.md) that names every fixture and every member of what they return.
tests/test_wheel.py runs the page's examples from an installed wheel."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from mock_radius_scenarios import UnknownScenarios, locate

import pytest_appgate_mfa_server
import pytest_mock_radius
from appgate_mfa_server import pytest_plugin as server_plugin
from mock_radius import pytest_plugin as mock_plugin
from mock_radius.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "pytest-plugins.md").read_text()
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
PLUGINS = [pytest_appgate_mfa_server, pytest_mock_radius]


def test_the_plugin_modules_import_nothing_of_the_project() -> None:
    """What pytest loads in every run: only pytest and the standard library come with it."""
    probe = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import pytest_appgate_mfa_server, pytest_mock_radius\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded = json.loads(found.stdout)
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    ours = {name.split(".")[0] for name in setuptools["packages"]} | {"server", "scenarios"}
    plugins = [plugin.__name__ for plugin in PLUGINS]
    assert set(plugins) <= set(loaded)
    assert [name for name in loaded if name.split(".")[0] in ours] == []


def _fixtures(module: Any) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(module).items()
        if type(value).__name__ == "FixtureFunctionDefinition"
    }


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.__name__)
def test_every_fixture_is_documented(plugin: Any) -> None:
    fixtures = _fixtures(plugin)
    assert len(fixtures) == 2
    for name, fixture in fixtures.items():
        assert fixture.__doc__ and len(fixture.__doc__.split()) > 10, name  # pytest --fixtures
        assert f"| `{name}` |" in PAGE, name


def _members(cls: type) -> set[str]:
    """The public fields, methods and properties of a type the fixtures hand out."""
    fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
    names = {f.name for f in fields if not f.name.startswith("_")}
    names |= {
        name
        for name, value in inspect.getmembers(cls)
        if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))
    }
    return names


@pytest.mark.parametrize(
    "cls",
    [server_plugin.MfaServer, server_plugin.Clock, server_plugin.Faults,
     server_plugin.ControlClient, mock_plugin.MockRadius, mock_plugin.ControlClient],
    ids=lambda c: f"{c.__module__.split('.')[0]}.{c.__name__}",
)  # fmt: skip
def test_every_member_of_the_fixtures_types_is_documented(cls: type) -> None:
    missing = [name for name in sorted(_members(cls)) if f"`{name}" not in PAGE]
    assert missing == [], f"{cls.__name__}: not in docs/pytest-plugins.md"


def test_every_shipped_scenario_is_named_as_its_file() -> None:
    """So the name the fixtures take is both the file's and the scenario's."""
    assert len(SHIPPED) == 15
    for file in SHIPPED:
        assert load_scenario(file).name == file.stem


def test_a_scenario_by_name_a_path_or_nothing() -> None:
    shipped = locate(None)
    assert {p.name for p in shipped.glob("*.yaml")} == {p.name for p in SHIPPED}
    assert locate("push") == shipped / "push.yaml"
    assert locate(ROOT / "scenarios" / "reject.yaml") == (ROOT / "scenarios" / "reject.yaml")
    with pytest.raises(UnknownScenarios) as refused:
        locate("pushh")
    assert str(refused.value).startswith(
        "pushh: no such file or folder, and no shipped scenario of that name (shipped: "
        "challenge, challenge-twice, "
    )


def test_a_path_that_exists_wins_over_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mock_radius_factory: Any
) -> None:
    """A client's own folder named like a shipped scenario is served, not the shipped one."""
    mine = tmp_path / "push"
    mine.mkdir()
    (mine / "mine.yaml").write_text((ROOT / "scenarios" / "reject.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    mock = mock_radius_factory("push")
    assert [s["name"] for s in mock.control.scenarios()["scenarios"]] == ["reject"]


@pytest.mark.mock_radius("push", time_scale=0.1)
def test_the_marker_takes_a_name(mock_radius: Any) -> None:
    listing = mock_radius.control.scenarios()
    assert [s["name"] for s in listing["scenarios"]] == ["push"]
    assert mock_radius.control.health()["timeScale"] == 0.1
    assert mock_radius.secret == "testing123"


def test_without_a_marker_every_shipped_scenario(mock_radius: Any) -> None:
    names = sorted(s["name"] for s in mock_radius.control.scenarios()["scenarios"])
    assert names == sorted(file.stem for file in SHIPPED)
