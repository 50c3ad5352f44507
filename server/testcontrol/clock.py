# -*- test-case-name: tests.test_test_control_units, tests.test_test_control -*-
"""The virtual clock every time-dependent part of the server reads under test control.

It reads the real clock until a test sets it; from then on it is frozen at the time set and
moves only when a test advances it, so a client test can compute TOTP codes in advance and step
over token lifetimes and lockout cooldowns without sleeping. Network timeouts (RADIUS, request
bodies, scripted delays) stay on real time: they bound how long a test waits.
"""

from __future__ import annotations

from collections.abc import Callable

EARLIEST = 0.0
LATEST = 32_503_680_000.0  # 3000-01-01: far enough, and dates stay printable with any lifetime


class ClockError(ValueError):
    """A time outside [EARLIEST, LATEST]; the message is for the client."""


class VirtualClock:
    def __init__(self, real: Callable[[], float]) -> None:
        self._real = real
        self._frozen_at: float | None = None

    def __call__(self) -> float:
        return self._real() if self._frozen_at is None else self._frozen_at

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def set(self, now: float | None) -> None:
        """Freeze at ``now``; None goes back to real time."""
        self._frozen_at = None if now is None else _checked(now)

    def advance(self, seconds: float) -> None:
        """Move the time by ``seconds`` (negative goes back); from real time, this freezes."""
        self._frozen_at = _checked(self() + seconds)

    def view(self) -> dict[str, object]:
        return {"now": self(), "frozen": self.frozen}


def _checked(now: float) -> float:
    if not EARLIEST <= now <= LATEST:
        raise ClockError(
            f"the time must be between {EARLIEST:.0f} and {LATEST:.0f} (epoch seconds)"
        )
    return float(now)
