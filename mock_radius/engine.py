"""The scenario state machine: (scenarios, sessions, request) -> decision. No sockets, no clock
of its own, no Twisted: tests drive it directly.

A session is one run of a scenario's script for one user. A request carrying a State that this
mock issued continues the session that issued it; any other request continues the user's
current session. Steps are tried in order from the session's cursor; the first whose conditions
hold is taken, and once it has been used ``times`` times the cursor moves past it. When the
cursor passes the last step the session is over and the user's next request starts a new one;
a request that fits nothing from the cursor on but fits an earlier step (a new login after an
Accept or Reject) also starts a new session there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from mock_radius.matching import RequestView, failed_conditions
from mock_radius.scenario import REPLY_CODES, Generate, Hex, Reply, Scenario, Step


@dataclass(frozen=True)
class NearMiss:
    step: str
    failed: tuple[str, ...]

    def describe(self) -> str:
        return f"closest step {self.step!r} failed on {', '.join(self.failed)}"


@dataclass(frozen=True)
class Decision:
    scenario: str
    step: str | None  # None: no step matched
    drop: bool = False
    code: int | None = None
    attributes: tuple[tuple[str, str | int | bytes], ...] = ()
    delay: float = 0.0
    fault: str | None = None
    on_retransmit: str = "same"
    near_miss: NearMiss | None = None
    issued_state: bytes | None = None


@dataclass
class Session:
    scenario: str
    user: str
    cursor: int = 0
    used: dict[int, int] = field(default_factory=dict)
    issued_state: bytes | None = None


class UnknownScenario(KeyError):
    pass


class Engine:
    def __init__(self, scenarios: list[Scenario], active: str | None = None) -> None:
        self.scenarios = {s.name: s for s in scenarios}
        if active is None and len(scenarios) == 1:
            active = scenarios[0].name
        if active is not None and active not in self.scenarios:
            raise UnknownScenario(active)
        self.active = active
        self.per_user: dict[str, str] = {}
        self._by_user: dict[tuple[str, str], Session] = {}
        self._by_state: dict[bytes, Session] = {}
        self._state_counters: dict[tuple[str, str], int] = {}

    # routing

    def activate(self, name: str | None, user: str | None = None) -> None:
        """Make ``name`` the scenario for everyone, or for ``user`` only; sessions restart."""
        if name is not None and name not in self.scenarios:
            raise UnknownScenario(name)
        if user is None:
            self.active = name
        elif name is None:
            self.per_user.pop(user, None)
        else:
            self.per_user[user] = name
        self.reset(user)

    def scenario_for(self, user: str | None) -> Scenario | None:
        """Per-user activation, then a scenario that lists the user, then the global one."""
        name = self.per_user.get(user or "")
        if name is None and user is not None:
            name = next((s.name for s in self.scenarios.values() if user in s.users), None)
        if name is None:
            name = self.active
        return None if name is None else self.scenarios[name]

    def reset(self, user: str | None = None) -> None:
        if user is None:
            self._by_user.clear()
            self._by_state.clear()
            self._state_counters.clear()
            return
        for key in [k for k in self._by_user if k[1] == user]:
            self._forget(self._by_user.pop(key))
        for key in [k for k in self._state_counters if k[1] == user]:
            del self._state_counters[key]

    def _forget(self, session: Session) -> None:
        for state in [s for s, owner in self._by_state.items() if owner is session]:
            del self._by_state[state]

    # deciding

    def _session(self, scenario: Scenario, request: RequestView) -> Session:
        if request.state is not None:
            owner = self._by_state.get(request.state)
            if owner is not None and owner.scenario == scenario.name:
                return owner
        key = (scenario.name, request.user_name or "")
        session = self._by_user.get(key)
        if session is None:
            session = self._by_user[key] = Session(scenario.name, request.user_name or "")
        return session

    def _mint_state(self, scenario: Scenario, user: str, step: str) -> bytes:
        key = (scenario.name, user)
        count = self._state_counters.get(key, 0) + 1
        self._state_counters[key] = count
        seed = f"{scenario.name}|{user}|{step}|{count}".encode()
        return hashlib.sha256(seed).digest()[:16]

    def _attributes(
        self, scenario: Scenario, reply: Reply, user: str, step: str
    ) -> tuple[list[tuple[str, str | int | bytes]], bytes | None]:
        out: list[tuple[str, str | int | bytes]] = []
        issued: bytes | None = None
        for name, value in reply.attributes.items():
            for item in value if isinstance(value, list) else [value]:
                encoded: str | int | bytes
                if isinstance(item, Generate):
                    encoded = issued = self._mint_state(scenario, user, step)
                elif isinstance(item, Hex):
                    encoded = bytes.fromhex(item.hex)
                elif name == "State" and isinstance(item, str):
                    encoded = item.encode("utf-8")
                else:
                    encoded = item
                if name == "State" and isinstance(encoded, bytes):
                    issued = encoded
                out.append((name, encoded))
        return out, issued

    def decide(self, scenario: Scenario, request: RequestView) -> Decision:
        session = self._session(scenario, request)
        candidates: list[tuple[int, list[str]]] = []
        for index in range(session.cursor, len(scenario.steps)):
            step = scenario.steps[index]
            failed = failed_conditions(step.match, request, session.issued_state)
            if not failed:
                return self._take(scenario, session, index, step)
            candidates.append((index, failed))
        if session.cursor > 0:
            # Nothing fits where the script stands: the client may have begun a new exchange
            # (a fresh login after an Accept or a Reject). Try the script from its start.
            fresh = Session(scenario.name, session.user)
            for index, step in enumerate(scenario.steps[: session.cursor]):
                if not failed_conditions(step.match, request, None):
                    self._end(session)
                    self._by_user[(scenario.name, session.user)] = fresh
                    return self._take(scenario, fresh, index, step)
        return self._mismatch(scenario, session, candidates)

    def _take(self, scenario: Scenario, session: Session, index: int, step: Step) -> Decision:
        name = scenario.step_name(index)
        session.used[index] = session.used.get(index, 0) + 1
        if step.times != "always" and session.used[index] >= step.times:
            session.cursor = index + 1
        else:
            session.cursor = index
        if step.drop:
            decision = Decision(scenario.name, name, drop=True, delay=step.delay)
        else:
            assert step.reply is not None
            attributes, issued = self._attributes(scenario, step.reply, session.user, name)
            if issued is not None:
                session.issued_state = issued
                self._by_state[issued] = session
            decision = Decision(
                scenario.name,
                name,
                code=REPLY_CODES[step.reply.code],
                attributes=tuple(attributes),
                delay=step.delay,
                fault=step.fault,
                on_retransmit=step.on_retransmit,
                issued_state=issued,
            )
        if session.cursor >= len(scenario.steps):
            self._end(session)
        return decision

    def _end(self, session: Session) -> None:
        self._by_user.pop((session.scenario, session.user), None)
        self._forget(session)

    def _mismatch(
        self, scenario: Scenario, session: Session, candidates: list[tuple[int, list[str]]]
    ) -> Decision:
        near: NearMiss | None = None
        if candidates:
            index, failed = min(candidates, key=lambda c: len(c[1]))
            near = NearMiss(scenario.step_name(index), tuple(failed))
        reply = scenario.on_mismatch
        attributes, _ = self._attributes(scenario, reply, session.user, "mismatch")
        if not reply.attributes:
            hint = near.describe() if near else "the script is over"
            attributes = [
                ("Reply-Message", f"mock-radius: no step of {scenario.name} matches ({hint})")
            ]
        return Decision(
            scenario.name,
            None,
            code=REPLY_CODES[reply.code],
            attributes=tuple(attributes),
            near_miss=near,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "perUser": dict(self.per_user),
            "sessions": len(self._by_user),
        }
