# -*- test-case-name: tests.test_pytest_plugins, tests.test_wheel -*-
"""pytest plugin of the reference server as a test double (entry point ``pytest11``, name
``mfa_server``).

pytest loads this module in every run of an environment where the package is installed, so it
imports nothing of the project until a test uses one of its fixtures: a project with modules of
its own named like ours (a ``server.py``, say), or a run that never needs the server, pays
nothing. The fixtures start ``mfa-server --test-control`` as a subprocess on a free port (see
server/pytest_plugin.py for what they return, docs/pytest-plugins.md for the reference);
``-p no:mfa_server`` turns them off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from appgate_mfa_server.pytest_plugin import Config, MfaServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mfa_server(config=None, *, test_control=True, tls=False, extra_args=()): the mfa-server "
        "of the mfa_server fixture (config: a dict, a YAML file, or None for the demo's users)",
    )


@pytest.fixture
def mfa_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., MfaServer]]:
    """Starts reference servers, each an 'mfa-server --test-control' process on a free port in
    a folder of its own, stopped after the test. Call mfa_server_factory(config=None, *,
    test_control=True, tls=False, extra_args=()); it returns an MfaServer (url, clock, faults,
    seed(), journal(), ...).

    - config: the configuration as a dict or a YAML file; None: the demo's users (without the
      demo's mock RADIUS server).
    - test_control: the /_test/ routes that clock, faults and seed() use.
    - tls: HTTPS with a self-signed certificate (MfaServer.certificate is the file to trust).
    - extra_args: more options of 'mfa-server'.
    """
    from appgate_mfa_server.pytest_plugin import start_mfa_server

    started: list[MfaServer] = []

    def start(config: Config = None, **options: Any) -> MfaServer:
        server = start_mfa_server(config, tmp_path_factory.mktemp("mfa-server"), **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def mfa_server(
    request: pytest.FixtureRequest, mfa_server_factory: Callable[..., MfaServer]
) -> MfaServer:
    """The server the test's marker @pytest.mark.mfa_server(...) describes (with the arguments
    of mfa_server_factory); without a marker, the demo's users."""
    marker = request.node.get_closest_marker("mfa_server")
    if marker is None:
        return mfa_server_factory()
    return mfa_server_factory(*marker.args, **marker.kwargs)
