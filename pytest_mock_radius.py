# -*- test-case-name: tests.test_pytest_plugins, tests.test_wheel -*-
"""pytest plugin of the mock RADIUS server (entry point ``pytest11``, name ``mock_radius``).

pytest loads this module in every run of an environment where the package is installed, so it
imports nothing of the project until a test uses one of its fixtures: a project with modules of
its own named like ours, or a run that never touches RADIUS, pays nothing. The fixtures start
``mock-radius serve`` as a subprocess on free ports (see mock_radius/pytest_plugin.py for what
they return, docs/pytest-plugins.md for the reference); ``-p no:mock_radius`` turns them off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mock_radius.pytest_plugin import MockRadius


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mock_radius(scenarios=None, *, scenario=None, time_scale=1.0, extra_args=()): the mock "
        "RADIUS server of the mock_radius fixture (scenarios: a shipped scenario's name, a file "
        "or a folder; None: every shipped scenario)",
    )


@pytest.fixture
def mock_radius_factory() -> Iterator[Callable[..., MockRadius]]:
    """Starts mock RADIUS servers, each a 'mock-radius serve' process on free ports, stopped
    after the test. Call mock_radius_factory(scenarios=None, *, scenario=None, time_scale=1.0,
    extra_args=()); it returns a MockRadius (address, secret, control, ...).

    - scenarios: a shipped scenario's name ("challenge"), a scenario file or a folder of them;
      None: every shipped scenario.
    - scenario: the scenario active for every user at start.
    - time_scale: multiplies every scripted delay.
    - extra_args: more options of 'mock-radius serve'.
    """
    from mock_radius.pytest_plugin import start_mock_radius

    started: list[MockRadius] = []

    def start(scenarios: str | Path | None = None, **options: Any) -> MockRadius:
        mock = start_mock_radius(scenarios, **options)
        started.append(mock)
        return mock

    yield start
    for mock in started:
        mock.stop()


@pytest.fixture
def mock_radius(
    request: pytest.FixtureRequest, mock_radius_factory: Callable[..., MockRadius]
) -> MockRadius:
    """The mock RADIUS server the test's marker @pytest.mark.mock_radius(...) describes (with
    the arguments of mock_radius_factory); without a marker, every shipped scenario."""
    marker = request.node.get_closest_marker("mock_radius")
    if marker is None:
        return mock_radius_factory()
    return mock_radius_factory(*marker.args, **marker.kwargs)
