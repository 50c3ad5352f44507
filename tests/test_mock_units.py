"""Unit tests of the mock's parts: scenario loading, and the protocol object driven without a
network (Twisted's task.Clock as reactor, a list as transport). The script rules are in
test_mock_engine.py, the protocol's strictness in test_mock_protocol.py, the codec in
tests/radius_codec/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from mock_radius.engine import Engine
from mock_radius.journal import Journal
from mock_radius.protocol import MockRadiusProtocol
from mock_radius.scenario import ScenarioError, load_scenarios, parse_scenario, scenario_files
from tests.radius_client import build_request, pyrad_verifies

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
LOADED = load_scenarios(SCENARIOS)


def test_all_shipped_scenarios_load() -> None:
    names = {s.name for s in load_scenarios(SCENARIOS)}
    assert {"challenge", "push", "push-password", "timeout", "reject", "one-factor"} <= names
    assert len([n for n in names if n.startswith("fault-")]) == 7
    for path in scenario_files(SCENARIOS):
        assert path.read_text().startswith("# "), f"{path.name} needs a comment on what it shows"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nsecret: s\nsteps:\n  - {reply: {code: Access-Accept}, drop: true}\n",
         "t.yaml:4: steps[0]: give exactly one of reply and drop: true"),
        ("name: x\nsecret: s\nsteps:\n  - reply:\n      code: Access-Accept\n"
         "      attributes: {Message-Authenticator: {hex: '00'}}\n",
         "t.yaml:6: steps[0].reply.attributes: Message-Authenticator is computed by the mock"),
        ("name: x\nsecret: s\nsteps:\n  - match: {userName: {regex: '('}}\n    drop: true\n",
         "t.yaml:4: steps[0].match.userName"),
        ("name: x\nsecret: s\nsteps:\n  - {drop: true, times: 0}\n",
         "t.yaml:4: steps[0].times"),
        ("name: x\nsecret: s\nsteps:\n  - reply: {code: Access-Accept, attributes: "
         "{Reply-Message: {generate: true}}}\n", "generate: true is only for State"),
        ("name: x\nsecret: s\nsteps: [{drop: true}]\nextra: 1\n", "t.yaml:4: extra: unknown key"),
        ("name: 'bad name'\nsecret: s\nsteps: [{drop: true}]\n", "t.yaml:1: name: String should"),
        ("name: x\n  secret: [\n", "t.yaml:2: not valid YAML"),
        ("- a list\n", "t.yaml:1: the top level must be a mapping of keys"),
        ("name: x\nsecret: s\nname: y\nsteps: [{drop: true}]\n",
         "t.yaml:3: name: duplicate key (first on line 1)"),
        ("name: x\nsecret: s\nsteps: &s [{drop: true}, *s]\n",
         "t.yaml:3: steps[1]: an alias refers to a value that contains it"),
    ],
)  # fmt: skip
def test_schema_errors_name_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "t.yaml")
    assert expected in str(caught.value)


yaml_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(
        st.sampled_from(
            ["name", "secret", "steps", "match", "reply", "code", "attributes", "drop",
             "delay", "times", "fault", "state", "userName", "password", "regex", "hex",
             "generate", "present", "onMismatch", "users", "Reply-Message", "State", "x"]
        ),
        children,
        max_size=5,
    ),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(yaml_values)
def test_generated_scenario_files_load_or_fail_clearly(data: Any) -> None:
    text = yaml.safe_dump(data)
    try:
        scenario = parse_scenario(text, "gen.yaml")
    except ScenarioError as exc:
        assert str(exc).startswith("gen.yaml:")
    else:
        assert scenario.steps
        Engine([scenario])  # what loads can be served: replies encode, conditions compile


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_the_loader(text: str) -> None:
    try:
        parse_scenario(text, "gen.yaml")
    except ScenarioError as exc:
        assert str(exc).startswith("gen.yaml")


class _Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def write(self, data: bytes, address: Any) -> None:
        self.sent.append((data, address))


def _protocol(time_scale: float = 1.0) -> tuple[MockRadiusProtocol, Clock, _Transport]:
    clock = Clock()
    protocol = MockRadiusProtocol(Engine(LOADED), Journal(), clock, time_scale=time_scale)
    transport = _Transport()
    protocol.transport = transport  # type: ignore[assignment]
    return protocol, clock, transport


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_datagrams_never_raise(datagram: bytes) -> None:
    protocol, _clock, _transport = _protocol()
    protocol.datagramReceived(datagram, ("127.0.0.1", 5000))
    assert protocol.errors == 0


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_requests_never_raise(data: st.DataObject) -> None:
    protocol, _clock, _transport = _protocol()
    raw = bytearray(build_request("testing123", "carol", "carol-pass").RequestPacket())
    for _ in range(data.draw(st.integers(1, 6))):
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    protocol.datagramReceived(bytes(raw), ("127.0.0.1", 5000))
    assert protocol.errors == 0


def test_delays_use_the_reactor_and_the_time_scale() -> None:
    protocol, clock, transport = _protocol(time_scale=0.5)
    request = build_request("testing123", "paula", "push-secret")
    protocol.datagramReceived(request.RequestPacket(), ("127.0.0.1", 5000))
    assert transport.sent == []
    clock.advance(0.99)
    assert transport.sent == []
    clock.advance(0.01)  # 2 s scripted x 0.5
    assert len(transport.sent) == 1
    assert pyrad_verifies(request, transport.sent[0][0], enforce_ma=True)


def test_duplicate_cache_expires() -> None:
    protocol, clock, transport = _protocol()
    request = build_request("testing123", "rex", "x")
    protocol.datagramReceived(request.RequestPacket(), ("127.0.0.1", 5000))
    protocol.datagramReceived(request.RequestPacket(), ("127.0.0.1", 5000))
    assert [e["outcome"] for e in protocol.journal.entries()] == [
        "matched",
        "retransmission-answered-from-cache",
    ]
    clock.advance(31)
    protocol.datagramReceived(request.RequestPacket(), ("127.0.0.1", 5000))
    assert protocol.journal.entries()[-1]["outcome"] == "matched"
    assert len(transport.sent) == 3


# the control API's parsers


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["user", "outcome", "step", "scenario", "from", "to", "since", "limit",
                         "usr", "colour", ""]) | st.text(max_size=6),
        st.lists(st.text(max_size=12) | st.sampled_from(["matched", "mismatch,matched", "1e3",
                                                         "nan", "inf", "-5"]), min_size=1,
                 max_size=3),
        max_size=5,
    )
)  # fmt: skip
def test_any_journal_query_gives_a_filter_or_a_clear_error(args: dict[str, list[str]]) -> None:
    from mock_radius.journal_filter import FILTERS, PAGING, FilterError, parse_filter

    unknown = sorted(set(args) - set(FILTERS) - set(PAGING))
    try:
        parsed = parse_filter(args)
    except FilterError as exc:
        message = str(exc)
        if unknown:
            assert message.startswith("unknown parameter") and all(u in message for u in unknown)
        else:
            assert message.split(":")[0] in ("outcome", "from", "to")
    else:
        assert not unknown
        assert parsed.start <= float("inf") and parsed.end >= float("-inf")


@settings(deadline=None)  # the first example imports twisted.web
@given(st.text(max_size=40))
def test_host_names_parse_without_error(header: str) -> None:
    from mock_radius.control_guard import host_name

    assert isinstance(host_name(header), str)


@pytest.mark.parametrize(
    ("header", "name"),
    [("127.0.0.1:8080", "127.0.0.1"), ("[::1]:80", "::1"), ("localhost", "localhost"),
     ("::1", "::1"), ("evil.example:1", "evil.example")],
)  # fmt: skip
def test_host_name(header: str, name: str) -> None:
    from mock_radius.control_guard import host_name

    assert host_name(header) == name
