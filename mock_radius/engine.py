# -*- test-case-name: tests.test_mock_engine, tests.test_mock_units -*-
"""The scenario state machine: (scenarios, sessions, request, now) -> decision. No sockets and
no clock of its own (the caller passes ``now``), no Twisted: tests drive it directly.

The script rules (docs/scenarios.md states them for users):

1. Exchanges. A request carrying the State that a live exchange of this user (under this
   scenario) was last given continues that exchange. Any other request starts a new one. An
   Access-Accept or Access-Reject ends its exchange, and so does ``session_idle`` seconds
   without a request.
2. Order. A new exchange is tried from the first step. A continued exchange is tried from the
   step after the one that answered it last, or from that step itself while it may answer
   again (``times: always``, or ``times: N`` with uses left).
3. Uses. A step with ``times: N`` answers at most N requests of the user, counted across
   exchanges; one with ``always`` or no ``times`` has no such limit (without ``times`` a step
   answers at most once per exchange, by rule 2). Used-up steps are skipped.
4. Starting over. When a new exchange fits no step that has uses left but fits a used-up one,
   the user's counts are cleared and the script starts over.
5. Mismatch. A request that fits no step gets the ``onMismatch`` reply.

So alternatives (right code accepted, anything else rejected) work for every login, a
catch-all never swallows a later right answer (each login starts at the top), and sequences
across logins are written with ``times``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from mock_radius.faults import Fault
from mock_radius.matching import Matcher
from mock_radius.rendering import shown_octets
from mock_radius.replies import EMPTY_ACCOUNTING, ReplyTemplate, compile_reply
from mock_radius.request_view import RequestView
from mock_radius.scenario import AccountingReply, AccountingStep, Reply, Scenario
from radius_codec.codes import Code, code_of_label
from radius_codec.dictionary import encode_attribute

DEFAULT_SESSION_IDLE = 300.0
DEFAULT_MAX_SESSIONS = 50_000
DEFAULT_ACCOUNTING_STEP = "accounting-default"  # the step name without an accounting section
_ACCOUNTING = "\0accounting"  # run keys of accounting scripts
_ENDS_EXCHANGE = {Code.ACCESS_ACCEPT, Code.ACCESS_REJECT}


@dataclass(frozen=True, slots=True)
class NearMiss:
    step: str
    failed: tuple[str, ...]

    def describe(self) -> str:
        return f"closest step {self.step!r} failed on {', '.join(self.failed)}"


@dataclass(frozen=True, slots=True)
class Decision:
    scenario: str
    step: str | None  # None: no step matched
    drop: bool = False
    template: ReplyTemplate | None = None
    state: bytes | None = None  # the State the reply carries (generated or scripted)
    extra: bytes = b""  # attributes added to the template (the mismatch hint, when sent)
    delay: float = 0.0
    fault: Fault | None = None
    on_retransmit: str = "same"
    near_miss: NearMiss | None = None
    hint: str | None = None  # why no step fitted, in words (journalled; on the wire if asked)

    @property
    def code(self) -> int | None:
        return None if self.template is None else self.template.code

    @property
    def attributes(self) -> tuple[tuple[str, Any], ...]:
        """The reply's attributes as (name, value) pairs, for tests and the journal."""
        if self.template is None:
            return ()
        shown = shown_octets(self.template.attributes(self.state, self.extra))
        return tuple((name, value) for name, values in shown.items() for value in values)


@dataclass(slots=True)
class _Run:
    """One user's uses of the counted steps (``times: N``) of one script."""

    used: dict[int, int] = field(default_factory=dict)
    touched: float = 0.0


@dataclass(slots=True)
class _Exchange:
    cursor: int  # the step that answered last (-1: the onMismatch reply)
    touched: float


class UnknownScenario(KeyError):
    pass


def _compiled(reply: Reply | AccountingReply | None) -> ReplyTemplate | None:
    if reply is None:
        return None
    return compile_reply(code_of_label(reply.code), reply.attributes)


class _Script:
    """A scenario's steps with their replies encoded once."""

    def __init__(self, scenario: Scenario, mismatch_hint: bool = False) -> None:
        self.scenario = scenario
        self.templates = [_compiled(step.reply) for step in scenario.steps]
        self.accounting = [_compiled(step.reply) for step in scenario.accounting or []]
        self.matchers = [Matcher(s.match) for s in scenario.steps]
        self.accounting_matchers = [Matcher(s.match) for s in scenario.accounting or []]
        mismatch = scenario.on_mismatch
        self.mismatch = compile_reply(code_of_label(mismatch.code), mismatch.attributes)
        wanted = mismatch_hint if mismatch.hint is None else mismatch.hint
        self.send_hint = wanted and "Reply-Message" not in mismatch.attributes
        # decisions that are the same for every request (no State minted), made once
        self.fixed: list[Decision | None] = [
            None if t is not None and t.generates_state else self._decision(i, None)
            for i, t in enumerate(self.templates)
        ]

    def _decision(self, index: int, state: bytes | None) -> Decision:
        step = self.scenario.steps[index]
        template = self.templates[index]
        return Decision(
            self.scenario.name,
            self.scenario.step_name(index),
            drop=step.drop,
            template=template,
            state=state if template is None or template.generates_state else template.state,
            delay=step.delay,
            fault=step.fault,
            on_retransmit=step.on_retransmit,
        )


def _trim(table: OrderedDict[Any, Any], idle_since: float, most: int) -> None:
    """Drop what has been idle since ``idle_since``, and the oldest beyond ``most``."""
    while table:
        oldest: _Run | _Exchange = next(iter(table.values()))
        if oldest.touched > idle_since and len(table) <= most:
            return
        table.popitem(last=False)


def _may_repeat(times: int | str | None, used: int) -> bool:
    return times == "always" or (isinstance(times, int) and used < times)


def _used_up(times: int | str | None, used: int) -> bool:
    return isinstance(times, int) and used >= times


class Engine:
    def __init__(
        self,
        scenarios: list[Scenario],
        active: str | None = None,
        *,
        seed: str | None = None,
        session_idle: float = DEFAULT_SESSION_IDLE,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        mismatch_hint: bool = False,
    ) -> None:
        """``seed`` None: States differ in every process (as a real server's); a seed makes
        them reproducible. ``mismatch_hint``: send the hint of scenarios that do not say."""
        self.scenarios = {s.name: s for s in scenarios}
        if active is None and len(scenarios) == 1:
            active = scenarios[0].name
        if active is not None and active not in self.scenarios:
            raise UnknownScenario(active)
        self.active = active
        self.seed = secrets.token_hex(16) if seed is None else seed
        self.session_idle = session_idle
        self.max_sessions = max_sessions
        self.per_user: dict[str, str] = {}
        self._scripts = {s.name: _Script(s, mismatch_hint) for s in scenarios}
        self._listed: dict[str, str] = {}
        for scenario in scenarios:
            for user in scenario.users:
                self._listed.setdefault(user, scenario.name)
        self._runs: OrderedDict[tuple[str, str], _Run] = OrderedDict()
        self._exchanges: OrderedDict[tuple[str, str, bytes], _Exchange] = OrderedDict()
        self._minted = 0  # States generated; never reset, so a State is never issued twice
        self._next_expiry = float("-inf")

    @property
    def secrets(self) -> list[bytes]:
        """Every shared secret in use, for packets that name no user (Status-Server)."""
        return list(dict.fromkeys(s.secret.encode() for s in self.scenarios.values()))

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
        name = None
        if user is not None:
            name = self.per_user.get(user) or self._listed.get(user)
        if name is None:
            name = self.active
        return None if name is None else self.scenarios[name]

    def reset(self, user: str | None = None) -> None:
        if user is None:
            self._runs.clear()
            self._exchanges.clear()
            return
        for run_key in [k for k in self._runs if k[1] == user]:
            del self._runs[run_key]
        for exchange_key in [k for k in self._exchanges if k[1] == user]:
            del self._exchanges[exchange_key]

    # sessions: bounded by idle time and by count

    def expire(self, now: float) -> None:
        """Drop idle sessions; looked at once per second of ``now`` (and on every new one,
        the count is held by ``_run`` and ``_follow``)."""
        if now < self._next_expiry:
            return
        self._next_expiry = now + 1.0
        limit = now - self.session_idle
        _trim(self._runs, limit, self.max_sessions)
        _trim(self._exchanges, limit, self.max_sessions)

    def _run(self, key: tuple[str, str], now: float) -> _Run:
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = _Run()
            if len(self._runs) > self.max_sessions:
                self._runs.popitem(last=False)
        else:
            self._runs.move_to_end(key)
        run.touched = now
        return run

    def _mint_state(self, scenario: str, user: str, step: str) -> bytes:
        """16 octets from seed, scenario, user, step and a counter: with a given seed the same
        requests in the same order give the same States; every exchange gets a new one."""
        self._minted += 1
        seed = f"{self.seed}|{scenario}|{user}|{step}|{self._minted}".encode()
        return hashlib.sha256(seed).digest()[:16]

    # deciding

    def decide(self, scenario: Scenario, request: RequestView, now: float = 0.0) -> Decision:
        self.expire(now)
        script = self._scripts[scenario.name]
        user = request.user_name or ""
        steps = scenario.steps
        run = self._runs.get((scenario.name, user))
        used = run.used if run is not None else {}
        exchange_key = None if request.state is None else (scenario.name, user, request.state)
        exchange = None if exchange_key is None else self._exchanges.get(exchange_key)
        if exchange is not None:
            cursor = exchange.cursor
            start = cursor + 1
            if cursor >= 0 and _may_repeat(steps[cursor].times, used.get(cursor, 0)):
                start = cursor
            issued = request.state
        else:
            start, issued = 0, None
        candidates: list[tuple[int, list[str]]] = []
        found = self._first_fit(script, request, start, used, issued, candidates)
        if found is None and exchange is None and self._only_used_up_fit(script, request, used):
            used.clear()  # rule 4: the script starts over
            found = self._first_fit(script, request, 0, used, None, [])
        if found is None:
            return self._mismatch(script, request, user, exchange_key, exchange, candidates, now)
        return self._take(script, found, user, exchange_key, exchange, now)

    @staticmethod
    def _only_used_up_fit(script: _Script, request: RequestView, used: dict[int, int]) -> bool:
        return any(not script.matchers[i].failed(request, None) for i in used)

    @staticmethod
    def _first_fit(
        script: _Script,
        request: RequestView,
        start: int,
        used: dict[int, int],
        issued: bytes | None,
        candidates: list[tuple[int, list[str]]],
    ) -> int | None:
        steps = script.scenario.steps
        for index in range(start, len(steps)):
            times = steps[index].times
            if isinstance(times, int) and used.get(index, 0) >= times:
                continue  # used up
            failed = script.matchers[index].failed(request, issued)
            if not failed:
                return index
            candidates.append((index, failed))
        return None

    def _take(
        self,
        script: _Script,
        index: int,
        user: str,
        exchange_key: tuple[str, str, bytes] | None,
        exchange: _Exchange | None,
        now: float,
    ) -> Decision:
        scenario = script.scenario
        step = scenario.steps[index]
        if isinstance(step.times, int):
            run = self._run((scenario.name, user), now)
            run.used[index] = run.used.get(index, 0) + 1
        decision = script.fixed[index]
        if decision is None:
            state = self._mint_state(scenario.name, user, scenario.step_name(index))
            decision = script._decision(index, state)
        self._follow(decision, index, user, exchange_key, exchange, now)
        return decision

    def _follow(
        self,
        decision: Decision,
        cursor: int,
        user: str,
        exchange_key: tuple[str, str, bytes] | None,
        exchange: _Exchange | None,
        now: float,
    ) -> None:
        """Where the exchange stands after this reply (rule 1)."""
        if decision.drop:
            if exchange is not None and exchange_key is not None:
                exchange.cursor, exchange.touched = cursor, now
                self._exchanges.move_to_end(exchange_key)
            return
        if exchange_key is not None and exchange is not None:
            del self._exchanges[exchange_key]
        if decision.code in _ENDS_EXCHANGE or decision.state is None:
            return
        key = (decision.scenario, user, decision.state)
        self._exchanges.pop(key, None)
        self._exchanges[key] = _Exchange(cursor, now)
        if len(self._exchanges) > self.max_sessions:
            self._exchanges.popitem(last=False)

    def _mismatch(
        self,
        script: _Script,
        request: RequestView,
        user: str,
        exchange_key: tuple[str, str, bytes] | None,
        exchange: _Exchange | None,
        candidates: list[tuple[int, list[str]]],
        now: float,
    ) -> Decision:
        scenario = script.scenario
        near: NearMiss | None = None
        if candidates:
            index, failed = min(candidates, key=lambda c: len(c[1]))
            near = NearMiss(scenario.step_name(index), tuple(failed))
        why = near.describe() if near else "the script is over"
        hint = f"mock-radius: no step of {scenario.name} matches ({why})"
        extra = encode_attribute("Reply-Message", hint) if script.send_hint else b""
        template = script.mismatch
        state = template.state
        if template.generates_state:
            state = self._mint_state(scenario.name, user, "mismatch")
        decision = Decision(scenario.name, None, template=template, state=state, extra=extra,
                            near_miss=near, hint=hint)  # fmt: skip
        cursor = exchange.cursor if exchange is not None else -1
        self._follow(decision, cursor, user, exchange_key, exchange, now)
        return decision

    def decide_accounting(
        self, scenario: Scenario, request: RequestView, now: float = 0.0
    ) -> Decision:
        """Every Accounting-Request is an exchange of its own: the script is tried from the top,
        ``times`` counted per user as for access steps; a request no step fits, and every
        request when there is no ``accounting`` section, gets an empty Accounting-Response."""
        self.expire(now)
        script = self._scripts[scenario.name]
        steps: list[AccountingStep] = scenario.accounting or []
        if not steps:
            return Decision(scenario.name, DEFAULT_ACCOUNTING_STEP, template=EMPTY_ACCOUNTING)
        user = request.user_name or ""
        run_key = (scenario.name + _ACCOUNTING, user)
        run = self._runs.get(run_key)
        used = run.used if run is not None else {}
        candidates: list[tuple[int, list[str]]] = []
        for attempt in (1, 2):
            for index, step in enumerate(steps):
                if _used_up(step.times, used.get(index, 0)):
                    continue
                failed = script.accounting_matchers[index].failed(request)
                if failed:
                    candidates.append((index, failed))
                    continue
                if isinstance(step.times, int):
                    counted = self._run(run_key, now)
                    counted.used[index] = counted.used.get(index, 0) + 1
                return Decision(
                    scenario.name,
                    scenario.accounting_step_name(index),
                    drop=step.drop,
                    template=script.accounting[index],
                    delay=step.delay,
                )
            if (
                attempt == 1
                and used
                and any(not script.accounting_matchers[i].failed(request) for i in used)
            ):
                used.clear()  # rule 4, as for access steps
                candidates.clear()
                continue
            break
        # answered all the same: a server that never answers, say, an Interim-Update is marked
        # dead by FreeRADIUS and the like; a script that means silence says so with a drop step
        index, failed = min(candidates, key=lambda c: len(c[1]))
        near = NearMiss(scenario.accounting_step_name(index), tuple(failed))
        hint = f"mock-radius: no accounting step of {scenario.name} matches ({near.describe()})"
        return Decision(scenario.name, None, template=EMPTY_ACCOUNTING, near_miss=near, hint=hint)

    def live(self, now: float, limit: int) -> dict[str, list[dict[str, Any]]]:
        """The newest ``limit`` live exchanges (the step that answered last, seconds idle) and
        users' counts of ``times: N`` steps, for people watching a run."""
        exchanges: list[dict[str, Any]] = []
        for (name, user, _state), exchange in reversed(self._exchanges.items()):
            if len(exchanges) >= limit:
                break
            scenario = self.scenarios.get(name)
            step = None
            if scenario is not None and exchange.cursor >= 0:
                step = scenario.step_name(exchange.cursor)
            idle = round(now - exchange.touched, 3)
            exchanges.append({"scenario": name, "user": user, "step": step, "idle": idle})
        runs: list[dict[str, Any]] = []
        for (name, user), run in reversed(self._runs.items()):
            if len(runs) >= limit:
                break
            accounting = name.endswith(_ACCOUNTING)
            scenario = self.scenarios.get(name.removesuffix(_ACCOUNTING))
            if scenario is None:
                continue
            label = scenario.accounting_step_name if accounting else scenario.step_name
            used = {label(index): count for index, count in sorted(run.used.items())}
            runs.append({"scenario": scenario.name, "user": user, "used": used,
                         "idle": round(now - run.touched, 3)})  # fmt: skip
        return {"exchanges": exchanges, "counts": runs}

    def describe(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "perUser": dict(self.per_user),
            "sessions": len(self._exchanges),
            "runs": len(self._runs),
        }
