# -*- test-case-name: tests.test_mock_units, tests.test_mock_control -*-
"""Which journal entries a reader wants: the query of ``GET /journal`` and of the live stream.

One parser for both, strict: a parameter it does not know, or an outcome that does not exist,
is an error naming it (a misspelt filter must not silently match everything).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from mock_radius.journal import Entry
from mock_radius.outcome import Outcome

# name: what it takes (for the error that lists them)
FILTERS = {
    "user": "a User-Name (repeatable)",
    "outcome": "an outcome, e.g. matched or mismatch (repeatable, or comma-separated)",
    "step": "a step name (repeatable)",
    "scenario": "a scenario name (repeatable, or comma-separated)",
    "from": "epoch seconds: entries at or after this time",
    "to": "epoch seconds: entries before this time",
}
PAGING = {"since": "a sequence number", "limit": "entries per page"}


class FilterError(ValueError):
    """A query the journal cannot answer; the message says which parameter and why."""


@dataclass(frozen=True)
class JournalFilter:
    users: frozenset[str] = frozenset()
    outcomes: frozenset[Outcome] = frozenset()
    steps: frozenset[str] = frozenset()
    scenarios: frozenset[str] = frozenset()
    start: float = -math.inf
    end: float = math.inf

    def matches(self, entry: Entry) -> bool:
        if self.users and entry.user not in self.users:
            return False
        if self.outcomes and entry.outcome not in self.outcomes:
            return False
        decision = entry.decision
        if self.steps and (decision is None or decision.step not in self.steps):
            return False
        if self.scenarios:
            scenario = entry.scenario or (decision.scenario if decision is not None else None)
            if scenario not in self.scenarios:
                return False
        when = round(entry.time, 6)  # as the journal shows it, so a shown time can bound
        return self.start <= when < self.end


def parse_filter(
    args: Mapping[str, list[str]], also_allowed: Mapping[str, str] = PAGING
) -> JournalFilter:
    """The filter of a query string (``args``: name -> values, as parsed)."""
    unknown = sorted(set(args) - set(FILTERS) - set(also_allowed))
    if unknown:
        known = ", ".join([*FILTERS, *also_allowed])
        raise FilterError(f"unknown parameter{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(unknown)} (known: {known})")  # fmt: skip
    outcomes: set[Outcome] = set()
    for value in _values(args, "outcome"):
        try:
            outcomes.add(Outcome(value))
        except ValueError:
            names = ", ".join(o.value for o in Outcome)
            raise FilterError(f"outcome: no outcome {value!r} (one of {names})") from None
    return JournalFilter(
        users=frozenset(args.get("user", [])),
        outcomes=frozenset(outcomes),
        steps=frozenset(args.get("step", [])),  # names may hold commas: repeat the parameter
        scenarios=frozenset(_values(args, "scenario")),
        start=_time(args, "from", -math.inf),
        end=_time(args, "to", math.inf),
    )


def _values(args: Mapping[str, list[str]], name: str) -> list[str]:
    return [part for value in args.get(name, []) for part in value.split(",") if part]


def _time(args: Mapping[str, list[str]], name: str, default: float) -> float:
    given = args.get(name)
    if not given:
        return default
    try:
        value = float(given[-1])
    except ValueError:
        raise FilterError(f"{name}: {given[-1]!r} is not epoch seconds") from None
    if not math.isfinite(value):
        raise FilterError(f"{name}: {given[-1]!r} is not epoch seconds")
    return value
