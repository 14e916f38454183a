"""Event rates from successive counter readings, with a short history and a change highlight.

Pure: fed ``(key, count, time)`` readings, it returns per-key rates (events/s), a bounded
history for sparklines and the time the rate last changed noticeably (for a fading highlight).
Counter resets (a smaller count than before: an irq reused, a port rebound) restart the key.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field

HISTORY = 40
CHANGE_RATIO = 0.25  # a rate moving by more than 25% (or from/to zero) counts as a change


@dataclass
class RateState:
    """What is known about one counter."""

    count: int
    at: float
    rate: float = 0.0
    history: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    changed_at: float = float("-inf")


def rate_changed(old: float, new: float, ratio: float = CHANGE_RATIO) -> bool:
    """True when ``new`` differs from ``old`` enough to highlight (to or from zero always does)."""
    if old == new:
        return False
    if old == 0 or new == 0:
        return True
    return abs(new - old) / max(abs(old), abs(new)) > ratio


class RateTracker:
    """Rates for a set of counters keyed by anything hashable (irq number, port)."""

    def __init__(self, history: int = HISTORY) -> None:
        self._history = history
        self.states: dict[Hashable, RateState] = {}

    def update(self, key: Hashable, count: int, at: float) -> RateState:
        """Record ``count`` for ``key`` at time ``at``; return the key's state."""
        st = self.states.get(key)
        if st is None or count < st.count:
            st = RateState(count=count, at=at, history=deque(maxlen=self._history))
            self.states[key] = st
            return st
        dt = at - st.at
        if dt <= 0:
            return st
        rate = (count - st.count) / dt
        if rate_changed(st.rate, rate):
            st.changed_at = at
        st.rate = rate
        st.count = count
        st.at = at
        st.history.append(rate)
        return st

    def forget_missing(self, present: set[Hashable]) -> None:
        """Drop the keys not in ``present`` (rows that disappeared)."""
        for key in [k for k in self.states if k not in present]:
            del self.states[key]
