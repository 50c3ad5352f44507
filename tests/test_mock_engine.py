"""The script rules (docs/scenarios.md), driven on the engine directly with an injected clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from mock_radius.engine import Engine, UnknownScenario
from mock_radius.request_view import RequestView
from mock_radius.scenario import Scenario, load_scenarios, parse_scenario
from radius_codec.codes import Code
from radius_codec.passwords import AuthProtocol

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
ACCEPT, REJECT, CHALLENGE = Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE


def view(user: str, password: str | None = None, state: bytes | None = None) -> RequestView:
    return RequestView(
        user_name=user,
        state=state,
        message_authenticator=True,
        password_matches=lambda clear: clear == password,
        auth_type=AuthProtocol.PAP,
        clear_password=lambda: password,
    )


def scenario(text: str) -> Scenario:
    return parse_scenario("name: t\nsecret: s\n" + text, "t.yaml")


def codes(engine: Engine, s: Scenario, *passwords: str) -> list[tuple[str | None, int | None]]:
    """Each password as a login of its own (no State)."""
    out = []
    for password in passwords:
        decision = engine.decide(s, view("u", password))
        out.append((decision.step, decision.code))
    return out


@pytest.fixture
def shipped() -> Engine:
    return Engine(load_scenarios(SCENARIOS))


def test_a_second_right_login_is_accepted(shipped: Engine) -> None:
    one_factor = shipped.scenarios["one-factor"]
    steps = [shipped.decide(one_factor, view("olga", p)).step for p in ("654321", "654321", "1")]
    assert steps == ["right-code", "right-code", "wrong-code"]
    assert shipped.decide(one_factor, view("olga", "654321")).step == "right-code"
    percy = shipped.scenarios["push-password"]
    steps = [shipped.decide(percy, view("percy", p)).step for p in ("percy-pass", "percy-pass")]
    assert steps == ["approved", "approved"]


def test_a_catch_all_never_swallows_a_later_right_answer() -> None:
    s = scenario(
        "steps:\n"
        "  - {name: accept, times: always, match: {password: right}, "
        "reply: {code: Access-Accept}}\n"
        "  - {name: reject, times: always, reply: {code: Access-Reject}}\n"
    )
    engine = Engine([s])
    assert codes(engine, s, "wrong", "right", "wrong", "right", "right") == [
        ("reject", REJECT), ("accept", ACCEPT), ("reject", REJECT), ("accept", ACCEPT),
        ("accept", ACCEPT),
    ]  # fmt: skip


def test_a_sequence_across_logins_is_written_with_times() -> None:
    s = scenario(
        "steps:\n"
        "  - {name: first-attempt, times: 1, match: {password: right}, "
        "reply: {code: Access-Reject}}\n"
        "  - {name: then, times: always, match: {password: right}, reply: {code: Access-Accept}}\n"
    )
    engine = Engine([s])
    assert codes(engine, s, "right", "right", "right") == [
        ("first-attempt", REJECT), ("then", ACCEPT), ("then", ACCEPT),
    ]  # fmt: skip


def test_times_and_always() -> None:
    s = scenario(
        "steps:\n"
        "  - {name: twice, times: 2, reply: {code: Access-Reject}}\n"
        "  - {name: then, times: always, reply: {code: Access-Accept}}\n"
    )
    engine = Engine([s])
    assert [engine.decide(s, view("u")).step for _ in range(4)] == [
        "twice",
        "twice",
        "then",
        "then",
    ]


def test_the_script_starts_over_when_only_used_up_steps_fit() -> None:
    """What recordings rely on: each step once, then the whole script again."""
    s = scenario(
        "steps:\n"
        "  - {name: a, times: 1, match: {password: x}, reply: {code: Access-Reject}}\n"
        "  - {name: b, times: 1, match: {password: x}, reply: {code: Access-Accept}}\n"
    )
    engine = Engine([s])
    assert [c[0] for c in codes(engine, s, "x", "x", "x", "x")] == ["a", "b", "a", "b"]
    assert codes(engine, s, "y") == [(None, REJECT)]  # fits nothing, used up or not


def test_challenge_logins_repeat_and_a_used_state_is_not_accepted_again(shipped: Engine) -> None:
    challenge = shipped.scenarios["challenge"]
    states = []
    for _ in range(2):
        first = shipped.decide(challenge, view("carol", "carol-pass"))
        assert (first.step, first.code) == ("challenge", CHALLENGE)
        assert first.state is not None
        states.append(first.state)
        second = shipped.decide(challenge, view("carol", "123456", first.state))
        assert (second.step, second.code) == ("right-code", ACCEPT)
    assert states[0] != states[1]
    replayed = shipped.decide(challenge, view("carol", "123456", states[0]))
    assert replayed.step is None and replayed.code == REJECT
    assert replayed.near_miss is not None
    assert replayed.near_miss.failed == ("state (expected the one issued)",)


def test_a_wrong_code_ends_the_exchange_and_the_next_login_works(shipped: Engine) -> None:
    challenge = shipped.scenarios["challenge"]
    state = shipped.decide(challenge, view("carol", "carol-pass")).state
    assert shipped.decide(challenge, view("carol", "000000", state)).step == "wrong-code"
    assert shipped.decide(challenge, view("carol", "123456", state)).step is None  # ended
    state = shipped.decide(challenge, view("carol", "carol-pass")).state
    assert shipped.decide(challenge, view("carol", "123456", state)).step == "right-code"


def test_concurrent_exchanges_of_one_user_stay_apart(shipped: Engine) -> None:
    challenge = shipped.scenarios["challenge"]
    one = shipped.decide(challenge, view("carol", "carol-pass")).state
    two = shipped.decide(challenge, view("carol", "carol-pass")).state
    assert one != two
    assert shipped.decide(challenge, view("carol", "123456", two)).step == "right-code"
    assert shipped.decide(challenge, view("carol", "000000", one)).step == "wrong-code"


def test_within_an_exchange_the_script_moves_forward() -> None:
    s = scenario(
        "steps:\n"
        "  - {name: first, match: {state: absent}, "
        "reply: {code: Access-Challenge, attributes: {State: {generate: true}}}}\n"
        "  - {name: second, match: {state: issued}, "
        "reply: {code: Access-Challenge, attributes: {State: {generate: true}}}}\n"
        "  - {name: done, match: {state: issued}, reply: {code: Access-Accept}}\n"
    )
    engine = Engine([s])
    state = engine.decide(s, view("u")).state
    second = engine.decide(s, view("u", state=state))
    assert second.step == "second"
    assert engine.decide(s, view("u", state=second.state)).step == "done"


def test_a_step_with_uses_left_may_answer_its_exchange_again() -> None:
    s = scenario(
        "steps:\n"
        "  - {name: start, match: {state: absent}, "
        "reply: {code: Access-Challenge, attributes: {State: {generate: true}}}}\n"
        "  - {name: retry, times: 2, match: {state: issued, password: wrong}, "
        "reply: {code: Access-Challenge, attributes: {State: {generate: true}}}}\n"
        "  - {name: locked, match: {state: issued}, reply: {code: Access-Reject}}\n"
    )
    engine = Engine([s])
    state = engine.decide(s, view("u")).state
    steps = []
    for _ in range(3):
        decision = engine.decide(s, view("u", "wrong", state))
        steps.append(decision.step)
        state = decision.state
    assert steps == ["retry", "retry", "locked"]


def test_exchanges_and_counts_end_after_the_idle_time() -> None:
    s = scenario(
        "steps:\n"
        "  - {name: start, match: {state: absent}, "
        "reply: {code: Access-Challenge, attributes: {State: {generate: true}}}}\n"
        "  - {name: code, match: {state: issued}, reply: {code: Access-Accept}}\n"
    )
    engine = Engine([s], session_idle=60)
    state = engine.decide(s, view("u"), now=1000).state
    assert engine.describe()["sessions"] == 1
    late = engine.decide(s, view("u", state=state), now=1061)
    assert late.step is None  # the exchange was forgotten
    assert engine.describe()["sessions"] == 0
    once = scenario("steps:\n  - {name: once, times: 1, match: {password: x}, "
                    "reply: {code: Access-Reject}}\n"
                    "  - {name: then, times: always, reply: {code: Access-Accept}}\n")  # fmt: skip
    engine = Engine([once], session_idle=60)
    assert engine.decide(once, view("u", "x"), now=0).step == "once"
    assert engine.decide(once, view("u", "x"), now=30).step == "then"
    assert engine.decide(once, view("u", "x"), now=100).step == "once"  # counts forgotten


def test_sessions_are_bounded_in_number() -> None:
    s = scenario(
        "steps:\n"
        "  - {times: 3, match: {state: absent}, "
        "reply: {code: Access-Challenge, attributes: {State: {generate: true}}}}\n"
        "  - {match: {state: issued}, reply: {code: Access-Accept}}\n"
    )
    engine = Engine([s], max_sessions=100)
    first = engine.decide(s, view("user-0"), now=0).state
    for n in range(1, 1000):
        engine.decide(s, view(f"user-{n}"), now=0)
    described = engine.describe()
    assert described["sessions"] == 100 and described["runs"] == 100
    assert engine.decide(s, view("user-0", state=first), now=0).step is None  # the oldest went


def test_states_are_random_unless_seeded() -> None:
    def states(seed: str | None = None) -> list[bytes | None]:
        engine = Engine(load_scenarios(SCENARIOS), seed=seed)
        challenge = engine.scenarios["challenge"]
        return [engine.decide(challenge, view("carol", "carol-pass")).state for _ in range(2)]

    first_run = states()
    assert first_run != states()  # a fresh process mints new States, as a real server
    assert first_run[0] != first_run[1]  # and each exchange gets a new one
    seeded = states("run-1")
    assert seeded == states("run-1")  # a seed makes them reproducible
    assert seeded != states("run-2") and seeded[0] != seeded[1]


def test_sessions_are_per_user(shipped: Engine) -> None:
    scenario_ = shipped.scenarios["one-factor"]
    assert shipped.decide(scenario_, view("olga", "654321")).step == "right-code"
    assert shipped.decide(scenario_, view("someone", "654321")).step == "wrong-code"


def test_password_alternatives() -> None:
    s = scenario("steps:\n  - {match: {password: [a, b]}, reply: {code: Access-Accept}}\n")
    engine = Engine([s])
    assert [c[1] for c in codes(engine, s, "a", "b", "c")] == [ACCEPT, ACCEPT, REJECT]


def test_mismatch_names_the_closest_step_and_the_hint_goes_on_the_wire_only_if_asked(
    shipped: Engine,
) -> None:
    challenge = shipped.scenarios["challenge"]
    decision = shipped.decide(challenge, view("carol", "wrong-pass"))
    assert decision.step is None and decision.code == REJECT
    assert decision.near_miss is not None
    assert decision.near_miss.step == "challenge" and decision.near_miss.failed == ("password",)
    hint = "mock-radius: no step of challenge matches (closest step 'challenge' failed on password)"
    assert decision.hint == hint  # for the journal, always
    assert decision.attributes == ()  # but not on the wire: FreeRADIUS says nothing of the kind
    asked = Engine(load_scenarios(SCENARIOS), mismatch_hint=True)  # serve --mismatch-hint
    assert dict(asked.decide(challenge, view("carol", "wrong-pass")).attributes) == {
        "Reply-Message": hint
    }
    loud = scenario(
        "onMismatch: {code: Access-Reject, hint: true}\n"
        "steps:\n  - {match: {password: x}, reply: {code: Access-Accept}}\n"
    )
    assert Engine([loud]).decide(loud, view("u", "y")).attributes == (
        ("Reply-Message", "mock-radius: no step of t matches (closest step 'step-1' failed on "
         "password)"),
    )  # fmt: skip
    quiet = scenario(
        "onMismatch: {code: Access-Reject, hint: false}\n"
        "steps:\n  - {match: {password: x}, reply: {code: Access-Accept}}\n"
    )
    silent = Engine([quiet], mismatch_hint=True).decide(quiet, view("u", "y"))
    assert silent.code == REJECT and silent.attributes == ()  # the scenario's word wins
    scripted = scenario(
        "onMismatch: {code: Access-Reject, hint: true, attributes: {Reply-Message: 'no'}}\n"
        "steps:\n  - {match: {password: x}, reply: {code: Access-Accept}}\n"
    )
    assert Engine([scripted]).decide(scripted, view("u", "y")).attributes == (
        ("Reply-Message", "no"),
    )


def test_chap_steps_match_the_recorded_exchange_exactly() -> None:
    challenge, response = bytes(range(16)), bytes([7]) + bytes(range(100, 116))
    s = scenario(
        f"steps:\n  - {{times: always, match: {{chap: {{challenge: '{challenge.hex()}', "
        f"response: '{response.hex()}'}}}}, reply: {{code: Access-Accept}}}}\n"
    )
    engine = Engine([s])

    def chap(c: bytes, r: bytes) -> RequestView:
        return RequestView(user_name="u", auth_type=AuthProtocol.CHAP, chap=(c, r))

    assert engine.decide(s, chap(challenge, response)).code == ACCEPT
    other = engine.decide(s, chap(challenge, response[:-1] + b"\0"))
    assert other.code == REJECT and other.near_miss is not None
    assert other.near_miss.failed == ("chap",)
    assert engine.decide(s, view("u", "any password")).code == REJECT  # PAP is no match either


def test_routing_and_activation(shipped: Engine) -> None:
    assert shipped.scenario_for("nobody") is None
    shipped.activate("reject")
    assert shipped.scenario_for("nobody").name == "reject"  # type: ignore[union-attr]
    shipped.activate("timeout", "carol")
    assert shipped.scenario_for("carol").name == "timeout"  # type: ignore[union-attr]
    shipped.activate(None, "carol")
    assert shipped.scenario_for("carol").name == "challenge"  # type: ignore[union-attr]
    with pytest.raises(UnknownScenario):
        shipped.activate("nope")


def test_accounting_scripts() -> None:
    plain = scenario("steps: [{drop: true}]\n")
    default = Engine([plain]).decide_accounting(plain, view("u"))
    assert default.code == Code.ACCOUNTING_RESPONSE and default.step == "accounting-default"
    s = scenario(
        "steps: [{drop: true}]\n"
        "accounting:\n"
        "  - {name: start, match: {attributes: {Acct-Status-Type: Start}}, "
        "reply: {attributes: {Reply-Message: recorded}}}\n"
        "  - {name: lost-stop, times: 1, match: {attributes: {Acct-Status-Type: Stop}}, "
        "drop: true}\n"
        "  - {name: stop, match: {attributes: {Acct-Status-Type: Stop}}, reply: {}}\n"
    )
    engine = Engine([s])

    def acct(status: str) -> RequestView:
        return RequestView(user_name="u", attributes={"Acct-Status-Type": [status]})

    start = engine.decide_accounting(s, acct("Start"))
    assert (start.step, start.code) == ("start", Code.ACCOUNTING_RESPONSE)
    assert dict(start.attributes) == {"Reply-Message": "recorded"}
    assert engine.decide_accounting(s, acct("Stop")).drop  # the first Stop is lost
    assert engine.decide_accounting(s, acct("Stop")).step == "stop"  # the NAS's retry is not
    other = engine.decide_accounting(s, acct("Interim-Update"))  # no step for it: answered
    assert (other.step, other.drop, other.code, other.attributes) == (
        None, False, Code.ACCOUNTING_RESPONSE, ()
    )  # fmt: skip
    assert other.near_miss is not None and other.hint == (
        "mock-radius: no accounting step of t matches (closest step 'start' failed on "
        "attribute Acct-Status-Type)"
    )
    by_number = scenario(
        "steps: [{drop: true}]\n"
        "accounting: [{match: {attributes: {Acct-Status-Type: 1}}, reply: {}}]\n"
    )
    assert Engine([by_number]).decide_accounting(by_number, acct("Start")).step == "accounting-1"


def test_a_recorded_password_hash_matches_only_its_password() -> None:
    """Recordings keep ``passwordHash`` (salted SHA-256), never the password; CHAP requests
    reveal no password, so they never match one. The hash is computed here from its
    definition in docs/scenarios.md, not with the mock's own function."""
    import hashlib

    salt = bytes.fromhex("a1b2c3d4" * 4)
    stored = f"sha256:{salt.hex()}:{hashlib.sha256(salt + 'höst-pass'.encode()).hexdigest()}"
    s = scenario(
        f"steps:\n  - {{name: recorded, match: {{passwordHash: '{stored}'}}, "
        "reply: {code: Access-Accept}}\n"
    )
    engine = Engine([s])
    assert codes(engine, s, "höst-pass", "höst-pasS", "") == [
        ("recorded", ACCEPT), (None, REJECT), (None, REJECT)
    ]  # fmt: skip
    chap = RequestView(user_name="u", message_authenticator=True, auth_type=AuthProtocol.CHAP,
                       chap=(b"c" * 16, b"\x01" + b"r" * 16))  # fmt: skip
    assert engine.decide(s, chap).code == REJECT


def test_not_password_matches_any_wrong_password_and_nothing_else() -> None:
    """What a recording with --passwords writes for a wrong attempt: a request that carries a
    password other than the listed ones (PAP or CHAP), never one that carries none."""
    import hashlib

    s = scenario(
        "steps:\n  - {name: wrong, match: {notPassword: [right, other]},\n"
        "     reply: {code: Access-Reject}}\n"
        "  - {name: anything-else, reply: {code: Access-Accept}}\n"
    )  # fmt: skip
    engine = Engine([s])
    assert [c[0] for c in codes(engine, s, "wrong", "right", "other", "guess")] == [
        "wrong", "anything-else", "anything-else", "wrong"
    ]  # fmt: skip
    no_password = RequestView(user_name="u", message_authenticator=True)
    assert engine.decide(s, no_password).step == "anything-else"
    challenge = b"c" * 16

    def chap(password: str) -> RequestView:
        response = b"\x01" + hashlib.md5(b"\x01" + password.encode() + challenge).digest()
        return RequestView(
            user_name="u", message_authenticator=True, auth_type=AuthProtocol.CHAP,
            chap=(challenge, response),
            password_matches=lambda clear: clear == password,
        )  # fmt: skip

    assert engine.decide(s, chap("guess")).step == "wrong"
    assert engine.decide(s, chap("right")).step == "anything-else"


def test_a_request_without_a_password_never_matches_a_password_step() -> None:
    s = scenario(
        "steps:\n  - {name: right, match: {password: right}, reply: {code: Access-Accept}}\n"
    )
    bare = RequestView(user_name="u", message_authenticator=True)  # no User- or CHAP-Password
    decision = Engine([s]).decide(s, bare)
    assert (decision.step, decision.code) == (None, REJECT)


def test_a_user_name_pattern_must_match_the_whole_name() -> None:
    s = scenario(
        "steps:\n  - {name: c-users, match: {userName: {regex: 'c[a-z]+'}}, "
        "reply: {code: Access-Accept}}\n"
    )
    engine = Engine([s])
    steps = [engine.decide(s, view(user, "pw")).step for user in ("carol", "bob", "carol2", "")]
    assert steps == ["c-users", None, None, None]


def test_an_octets_attribute_matches_its_text() -> None:
    """Attributes the dictionary types as octets (Class here) arrive as bytes; a condition
    written as text compares against their UTF-8 text."""
    s = scenario(
        "steps:\n  - {name: gold, match: {attributes: {Class: gold}}, "
        "reply: {code: Access-Accept}}\n"
    )
    engine = Engine([s])

    def with_class(value: bytes) -> RequestView:
        return RequestView(user_name="u", message_authenticator=True, attributes={"Class": [value]})

    assert [engine.decide(s, with_class(v)).step for v in (b"gold", b"silver")] == ["gold", None]
