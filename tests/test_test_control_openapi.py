"""server/test-control.yaml, the document of /_test/, against a live server with test control
on, as tests/test_openapi.py checks server/openapi.yaml: schemathesis generates requests from
it and checks that nothing answers 500 and that every answer matches the document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from appgate_mfa_server.testcontrol.routes import control_app
from tests.conftest import LiveServer, base_config

ROOT = Path(__file__).parent.parent
SPEC_FILE = ROOT / "server" / "test-control.yaml"
SPEC = yaml.safe_load(SPEC_FILE.read_text())
schema = schemathesis.openapi.from_path(str(SPEC_FILE))


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    """The shared `live` fixture's configuration, with test control on."""
    config = base_config(tmp_path)
    config["server"]["testControl"] = True
    return config


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_test_control_conforms(case: Any, live: LiveServer) -> None:
    # A fault that fits the schema can still be refused (422): which fields go together (a
    # status below 400 needs a body, a connection fault takes no status) is said in the
    # document's words, not in its schema.
    case.call_and_validate(base_url=live.url, excluded_checks=[positive_data_acceptance])


def test_the_document_lists_every_route(live: LiveServer) -> None:
    control = next(m.kwargs["control"] for m in live.app.user_middleware if "control" in m.kwargs)
    paths = [getattr(route, "path", "") for route in control_app(control).routes]
    routes = {p.replace("{id:int}", "{id}").replace("{dn:path}", "{distinguished-name}")
              for p in paths}  # fmt: skip
    assert routes == set(SPEC["paths"])


def test_the_api_document_stays_the_document_of_admin() -> None:
    api = yaml.safe_load((ROOT / "server" / "openapi.yaml").read_text())
    assert all(path.startswith("/admin/") for path in api["paths"])
