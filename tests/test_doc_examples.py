"""The mock's client examples in docs/mock-radius.md run as written (radclient, pyrad, curl),
against a real mock process, with the documented ports swapped for free ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.doc_examples import ROOT, examples, with_ports
from tests.radius_client import build_request, send

EXAMPLES = examples(ROOT / "docs" / "mock-radius.md")


@pytest.fixture
def mock(mock_radius_factory: Any) -> Any:
    """`mock-radius serve --control-port 8080`, as the page starts it: the shipped scenarios."""
    return mock_radius_factory()


def _ports(mock: Any) -> dict[int, int]:
    return {1812: mock.port, 8080: mock.control_port}


def test_the_page_has_its_three_examples() -> None:
    assert set(EXAMPLES) == {"radclient", "pyrad", "curl"}


def test_radclient(mock: Any, tmp_path: Path) -> None:
    code = with_ports(EXAMPLES["radclient"], {1812: mock.port})
    result = subprocess.run(["bash", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    first, _, second = result.stdout.partition("Received Access-Challenge")[2].partition(
        "Received Access-Accept"
    )
    assert 'Reply-Message = "Enter the code shown on your token"' in first
    assert 'Reply-Message = "Welcome"' in second
    assert result.returncode == 0, result.stderr  # the second radclient got its Access-Accept
    entries = mock.control.journal(user="carol")
    assert [(e["step"], e["messageAuthenticator"]) for e in entries] == [
        ("challenge", "valid"),
        ("right-code", "valid"),
    ]


def test_pyrad(mock: Any, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(with_ports(EXAMPLES["pyrad"], {1812: mock.port}))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Enter the code shown on your token\nWelcome\n"
    assert [e["step"] for e in mock.control.journal(user="carol")] == ["challenge", "right-code"]


def test_curl(mock: Any) -> None:
    request = build_request(mock.secret, "carol", "carol-pass")
    assert send(mock.address, request).reply() is not None  # something for the journal to show
    code = with_ports(EXAMPLES["curl"], {8080: mock.control_port})
    result = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    health, journal, routed, cleared = map(json.loads, result.stdout.splitlines())
    assert (health["status"], health["scenarios"]) == ("ok", 15)
    assert [e["step"] for e in journal["entries"]] == ["challenge"]
    assert routed == {"active": None, "perUser": {"rex": "challenge"}}
    assert cleared == {"active": None, "perUser": {}}
    assert mock.control.scenarios()["perUser"] == {}
