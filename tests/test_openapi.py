"""The shipped OpenAPI document against the live server: schemathesis generates requests from it
and checks that nothing answers 500 and every response matches the document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.conftest import ACCEPT, DEVICE_ID, LiveServer

SPEC = Path(__file__).parent.parent / "server" / "openapi.yaml"
schema = schemathesis.openapi.from_path(str(SPEC))


def _full_admin_token(live: LiveServer) -> str:
    partial = live.login("root", "root-pass", "service")["token"]
    token: str = live.call("GET", "/admin/authorization", token=partial).json()["token"]
    return token


@pytest.fixture
def admin_headers(live: LiveServer) -> dict[str, str]:
    return {**ACCEPT, "Authorization": f"Bearer {_full_admin_token(live)}"}


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms(case: Any, live: LiveServer) -> None:
    headers = dict(ACCEPT)
    if "Authorization" in (case.headers or {}) or case.path != "/admin/authentication":
        headers["Authorization"] = f"Bearer {_full_admin_token(live)}"
    # Every case is sent with a valid Accept header and a full admin token, so a case that is
    # "negative" only because those headers are missing is not negative any more; the junk
    # body tests in test_errors.py cover rejection of bad input.
    case.call_and_validate(
        base_url=live.url, headers=headers, excluded_checks=[negative_data_rejection]
    )


def test_spec_lists_every_route(live: LiveServer) -> None:
    spec = yaml.safe_load(SPEC.read_text())
    routes = {
        route.path.replace("{dn}", "{distinguished-name}")
        for route in live.app.routes  # type: ignore[union-attr]
    }
    assert routes == set(spec["paths"])


def test_login_example_in_spec_is_accepted(live: LiveServer) -> None:
    spec = yaml.safe_load(SPEC.read_text())
    props = spec["components"]["schemas"]["LoginRequest"]["properties"]
    body = {name: prop["example"] for name, prop in props.items()}
    assert body["deviceId"] == DEVICE_ID
    response = httpx.post(live.url + "/admin/authentication", headers=ACCEPT, json=body)
    assert response.status_code == 200
