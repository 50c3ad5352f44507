"""`check-config` and a bad `--config`: one `file:line: key.path: problem` per problem, the line
being the one of the offending key, paths without pydantic's union tags, a did-you-mean for
unknown keys and values, YAML syntax errors with their line."""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appgate_mfa_server.config import (
    ApiVersions,
    ConfigError,
    DefaultTimeBasedProvider,
    IdentityProvider,
    LockoutSettings,
    RadiusProvider,
    ServerSettings,
    Settings,
    StorageSettings,
    User,
    parse_settings,
)
from mfa_shared import safe_yaml

SOURCE = "conf.yaml"
LINE = re.compile(rf"^{re.escape(SOURCE)}:(\d+): (.+)$")

BAD = """\
server:
  port: many
  colour: red
  tokenLifetme: 1h
storage:
  url: mysql://x
identityProviders:
  - name: local
    users:
      - {username: alice}
mfaProviders:
  - name: builtin
    type: DefaultTimeBased
    secretBits: 100
  - name: r
    type: Raduis
  - name: r2
    type: Radius
    hostnames: [h]
    timeout: soon
    mode: push
    authenticationProtocol: pap
    useUserPassword: true
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, SOURCE, Path("."))
    return str(caught.value).splitlines()


def test_every_problem_names_its_line_and_key_path() -> None:
    assert problems(BAD) == [
        "conf.yaml:2: server.port: Input should be a valid integer, unable to parse string as "
        "an integer",
        "conf.yaml:3: server.colour: unknown key",
        "conf.yaml:4: server.tokenLifetme: unknown key (did you mean 'tokenLifetime'?)",
        "conf.yaml:6: storage.url: must start with sqlite:/// or postgresql://",
        "conf.yaml:10: identityProviders[0].users[0]: give exactly one of password and "
        "passwordHash",
        "conf.yaml:14: mfaProviders[0].secretBits: Input should be a multiple of 8",
        "conf.yaml:16: mfaProviders[1].type: unknown type 'Raduis', expected one of "
        "DefaultTimeBased, Radius (did you mean 'Radius'?)",
        "conf.yaml:17: mfaProviders[2].sharedSecret: required key is missing",
        "conf.yaml:20: mfaProviders[2].timeout: expected a duration such as 30s, 15m or 24h",
        "conf.yaml:21: mfaProviders[2].mode: Input should be 'OneFactor', 'Challenge' or 'Push' "
        "(did you mean 'Push'?)",
        "conf.yaml:22: mfaProviders[2].authenticationProtocol: Input should be 'PAP' or 'CHAP' "
        "(did you mean 'PAP'?)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # checks across entries point at the second entry's key
            "identityProviders:\n  - {name: a}\n  - name: b\n  - name: a\n",
            "conf.yaml:4: identityProviders[2].name: duplicate name 'a' "
            "(also identityProviders[0])",
        ),
        (
            "identityProviders:\n  - name: a\n    users:\n      - {username: u, password: p}\n"
            "      - {username: u, password: q}\n",
            "conf.yaml:5: identityProviders[0].users[1].username: duplicate username 'u' "
            "(also users[0])",
        ),
        (
            "identityProviders:\n  - name: a\n    mfaProvider: buitin\n"
            "mfaProviders: [{name: builtin, type: DefaultTimeBased}]\n",
            "conf.yaml:3: identityProviders[0].mfaProvider: no MFA provider named 'buitin' in "
            "mfaProviders (builtin)",
        ),
        (  # a key that is not in the file: the line of its mapping
            "identityProviders: [{name: a}]\nmfaProviders:\n"
            "  - {name: r, type: Radius, hostnames: [h], sharedSecret: s, mode: Push}\n",
            "conf.yaml:3: mfaProviders[0].challengeSharedSecret: mode Push without "
            "useUserPassword needs challengeSharedSecret",
        ),
        (
            "identityProviders: [{name: a}]\nmfaProviders:\n  - name: x\n",
            "conf.yaml:3: mfaProviders[0].type: required key is missing (one of "
            "DefaultTimeBased, Radius)",
        ),
        (  # PyYAML would keep the second silently
            "server:\n  port: 1\n  port: 2\nidentityProviders: [{name: a}]\n",
            "conf.yaml:3: server.port: duplicate key (first on line 2)",
        ),
        (
            "identityProviders: [{name: a}]\nserver: {host: [unclosed\n",
            (  # libyaml's words, or PyYAML's own where libyaml is missing
                "conf.yaml:3: not valid YAML: did not find expected ',' or ']' (while parsing a "
                "flow sequence on line 2)",
                "conf.yaml:3: not valid YAML: expected ',' or ']', but got '<stream end>' (while "
                "parsing a flow sequence on line 2)",
            ),
        ),
        (
            "a: b\n--- \nc: d\n",
            "conf.yaml:2: not valid YAML: expected a single document in the stream but found "
            "another document",
        ),
        (
            "identityProviders: [{name: a}]\nserver:\n  apiVersions: &v {min: 18, max: *v}\n",
            "conf.yaml:3: server.apiVersions.max: an alias refers to a value that contains it",
        ),
        (  # "billion laughs": a small file, a tree too big to check
            "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 7)),
            "conf.yaml:1: aliases expand to more than 100000 repeated values",
        ),
        ("", "conf.yaml:1: the top level must be a mapping of keys"),
        ("server: {}\n\x1f", "conf.yaml:2: not valid YAML: character #x001f is not allowed"),
        ("- a\n", "conf.yaml:1: the top level must be a mapping of keys"),
        (
            "identityProviders: []\n",
            "conf.yaml:1: identityProviders: List should have at least "
            "1 item after validation, not 0",
        ),
    ],
)
def test_problems_at_the_offending_line(text: str, expected: str | tuple[str, str]) -> None:
    found = problems(text)
    assert found in ([[expected]] if isinstance(expected, str) else [[e] for e in expected])


def test_many_values_are_not_mistaken_for_an_alias_bomb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only values reached again through aliases count towards the limit, not the file's size."""
    monkeypatch.setattr(safe_yaml, "MAX_ALIAS_VISITS", 10)
    monkeypatch.setattr(safe_yaml, "ALIAS_VISITS_PER_NODE", 1)
    users = "".join(f"  - {{username: u{i}, password: pw}}\n" for i in range(200))
    text = f"identityProviders:\n- name: local\n  users:\n{users}"
    assert len(parse_settings(text, SOURCE, Path(".")).identity_providers[0].users) == 200
    shared = f"identityProviders:\n- name: one\n  users: &all\n{users}- name: two\n  users: *all\n"
    assert len(parse_settings(shared, SOURCE, Path(".")).identity_providers[1].users) == 200
    bomb = "a: &a [x, x, x]\nb: &b [*a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b]\n"
    assert problems(bomb) == ["conf.yaml:1: aliases expand to more than 10 repeated values"]


# -- properties ------------------------------------------------------------------------------

VALID: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "port": 8443, "apiVersions": {"min": 18, "max": 22},
               "loginLockout": {"maxFailedAttempts": 10, "cooldown": "60s"}},
    "storage": {"url": "sqlite:///./mfa.db", "encryptionKeyFile": "./seed.key"},
    "identityProviders": [
        {"name": "local", "mfaProvider": "builtin",
         "users": [{"username": "alice", "password": "a"}, {"username": "bob", "password": "b"}]},
        {"name": "corp", "mfaProvider": "radius",
         "users": [{"username": "carol", "password": "c"}]},
    ],
    "mfaProviders": [
        {"name": "builtin", "type": "DefaultTimeBased", "digits": 6, "period": 30,
         "lockout": {"maxFailedAttempts": 5}},
        {"name": "radius", "type": "Radius", "hostnames": ["h"], "port": 1812, "sharedSecret": "s",
         "useUserPassword": True, "lockout": {"maxFailedAttempts": 5}},
    ],
}  # fmt: skip
MARKER = "MARKER-not-a-number"


def _mappings(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in VALID whose value is a mapping (the root included)."""
    found = [path] if isinstance(node, dict) else []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, value in items:
        found += _mappings(value, (*path, key))
    return found


def _integer_keys(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, bool):
        return []
    if isinstance(node, int):
        return [path]
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    return [p for key, value in items for p in _integer_keys(value, (*path, key))]


def _keys_of(path: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``path`` of VALID allows."""
    generic = tuple("#" if isinstance(p, int) else p for p in path)
    models: dict[tuple[Any, ...], type[Any]] = {
        (): Settings,
        ("server",): ServerSettings,
        ("server", "apiVersions"): ApiVersions,
        ("server", "loginLockout"): LockoutSettings,
        ("storage",): StorageSettings,
        ("identityProviders", "#"): IdentityProvider,
        ("identityProviders", "#", "users", "#"): User,
        ("mfaProviders", "#", "lockout"): LockoutSettings,
    }
    model = models.get(generic) or [DefaultTimeBasedProvider, RadiusProvider][path[1]]
    return [field.alias for field in model.model_fields.values()]


def _copy_with(path: tuple[Any, ...], change: Any) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(VALID))
    target: Any = config
    for part in path:
        target = target[part]
    change(target)
    return config


def _shown(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).removeprefix(".")


def _marked_line(text: str, marker: str) -> int:
    (line,) = [n for n, content in enumerate(text.splitlines(), 1) if marker in content]
    return line


def test_the_valid_base_is_valid() -> None:
    assert isinstance(parse_settings(yaml.safe_dump(VALID), SOURCE, Path(".")), Settings)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_integer_keys(VALID)), st.booleans())
def test_a_wrong_value_is_reported_at_its_own_line(path: tuple[Any, ...], flow: bool) -> None:
    config = _copy_with(path[:-1], lambda parent: parent.__setitem__(path[-1], MARKER))
    text = yaml.safe_dump(config, default_flow_style=None if flow else False, width=10_000)
    lines = problems(text)
    assert len(lines) == 1
    match = LINE.match(lines[0])
    assert match, lines
    assert int(match.group(1)) == _marked_line(text, MARKER)
    assert match.group(2).startswith(f"{_shown(path)}: Input should be a valid integer")


def _typo(key: str, position: int, letter: str) -> str:
    index = position % len(key)
    return key[:index] + letter + key[index + 1 :]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_mappings(VALID)),
    st.integers(min_value=0, max_value=30),
    st.sampled_from("xqzj"),
    st.data(),
)
def test_an_unknown_key_gets_its_line_and_the_closest_known_key(
    path: tuple[Any, ...], position: int, letter: str, data: st.DataObject
) -> None:
    known = _keys_of(path)
    original = data.draw(st.sampled_from(known))
    typo = _typo(original, position, letter)
    if typo in known:
        return
    config = _copy_with(path, lambda mapping: mapping.__setitem__(typo, "x"))
    text = yaml.safe_dump(config, default_flow_style=False, sort_keys=False)
    lines = problems(text)
    match = LINE.match(lines[0])
    assert match and len(lines) == 1, lines
    key_line = next(n for n, line in enumerate(text.splitlines(), 1) if f"{typo}: x" in line)
    assert int(match.group(1)) == key_line
    expected = f"{_shown((*path, typo))}: unknown key"
    assert match.group(2).startswith(expected)
    hint = re.search(r"\(did you mean '([^']+)'\?\)$", match.group(2))
    if len(original) >= 5:  # one letter changed: close enough for a suggestion
        assert hint, lines
    if hint:
        suggestion = hint.group(1)
        assert suggestion in known
        ratio = difflib.SequenceMatcher(None, typo.casefold(), suggestion.casefold()).ratio()
        best = difflib.SequenceMatcher(None, typo.casefold(), original.casefold()).ratio()
        assert ratio >= best


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "server",
                    "port",
                    "name",
                    "users",
                    "type",
                    "Radius",
                    "mfaProviders",
                    "identityProviders",
                    "storage",
                    "url",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(yaml_values.map(lambda v: yaml.safe_dump(v)), st.text(max_size=60)))
def test_any_input_gives_settings_or_located_problems(text: str) -> None:
    try:
        parse_settings(text, SOURCE, Path("."))
    except ConfigError as exc:
        count = max(1, len(text.splitlines()) + 1)
        for line in str(exc).splitlines():
            match = LINE.match(line)
            assert match, line
            assert 1 <= int(match.group(1)) <= count
            assert "Traceback" not in line


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appgate_mfa_server", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.slow
def test_check_config_exit_status_is_that_of_mock_radius_validate(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    result = _check(bad)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == (
        f"{bad}:2: server.port: Input should be a valid integer, unable to parse string as an "
        "integer"
    )
    assert len(result.stderr.splitlines()) == 11
    validate = subprocess.run(  # the same file is no valid scenario either
        [sys.executable, "-m", "mock_radius", "validate", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert validate.returncode == result.returncode
    missing = _check(tmp_path / "missing.yaml")
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"{tmp_path / 'missing.yaml'}: cannot read: " + (
        "No such file or directory"
    )
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00server")
    assert _check(binary).stderr.strip() == f"{binary}: cannot read: not UTF-8 text"
