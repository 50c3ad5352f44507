"""The scenario format as JSON Schema: shipped, referenced by every shipped file, current, and
never stricter than the loader (an editor must not flag a file the mock accepts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_radius.engine import Engine
from mock_radius.scenario import ScenarioError, json_schema, parse_scenario, scenario_files

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SHIPPED = SCENARIOS / "scenario.schema.json"
MODELINE = "# yaml-language-server: $schema=scenario.schema.json"


def test_the_shipped_schema_is_what_the_command_prints() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "mock_radius", "schema"], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(printed) == json.loads(SHIPPED.read_text()) == json_schema(), (
        "regenerate it: mock-radius schema > scenarios/scenario.schema.json"
    )


def test_every_shipped_scenario_references_and_meets_the_schema() -> None:
    schema = json.loads(SHIPPED.read_text())
    for path in scenario_files(SCENARIOS):
        text = path.read_text()
        comments = [line for line in text.splitlines() if line.startswith("#")]
        assert comments[0] != MODELINE, f"{path.name}: first say what the scenario shows"
        assert MODELINE in comments, f"{path.name} does not reference the schema"
        jsonschema.validate(yaml.safe_load(text), schema)


def test_the_schema_catches_what_editors_should_flag() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    bad = {
        "name": "x",
        "secret": "s",
        "steps": [
            {"match": {"colour": "red"}, "reply": {"code": "Access-Maybe"}},
            {"reply": {"code": "Access-Accept", "attributes": {"Reply-Mesage": "typo"}}},
        ],
    }
    errors = list(validator.iter_errors(bad))
    assert {tuple(e.absolute_path) for e in errors} == {
        ("steps", 0, "match"),  # unknown key colour
        ("steps", 0, "reply"),  # unknown code
        ("steps", 1, "reply"),  # unknown attribute name
    }
    text = " ".join(str(sub.message) for e in errors for sub in [e, *(e.context or [])])
    assert "'colour' was unexpected" in text
    assert "'Access-Maybe' is not one of" in text
    assert "'Reply-Mesage' is not one of" in text


names = st.sampled_from(["name", "secret", "steps", "match", "reply", "code", "attributes",
                         "drop", "delay", "times", "fault", "state", "userName", "password",
                         "hint", "onMismatch", "users", "Reply-Message", "State", "Session-Timeout",
                         "accounting", "x"])  # fmt: skip
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-2, 70)
    | st.sampled_from(
        ["Access-Accept", "Access-Challenge", "always", "issued", "absent", "s", "hi"]
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(names, children, max_size=4),
    max_leaves=16,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"name": st.just("gen"), "secret": st.just("s"), "steps": st.lists(values, max_size=3)},
        optional={"onMismatch": values, "users": values, "accounting": values},
    )
)
def test_a_file_the_loader_accepts_the_schema_accepts(data: dict[str, Any]) -> None:
    try:
        scenario = parse_scenario(yaml.safe_dump(data), "gen.yaml")
    except ScenarioError:
        return
    jsonschema.validate(data, json_schema())
    Engine([scenario])  # and the mock can serve it
