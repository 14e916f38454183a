"""What a step is and what it sees while it runs: :class:`Step` and :class:`StepContext`.

Kept apart from the engine (:mod:`grantscope.probing.engine`, which re-exports both) so the
step builders (:mod:`grantscope.probing.steps`) and the :class:`~grantscope.probing.probe.Probe`
base class need not import the machinery that runs them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grantscope.probing.devices import Devices
from grantscope.probing.records import StepFailed

CANCEL_SLICE_S = 0.2  # a waiting step notices a cleanup within this long

__all__ = ["CANCEL_SLICE_S", "Step", "StepContext"]


@dataclass(frozen=True)
class Step:
    """One step of a probe.

    ``action(ctx)`` does the work and returns the result (a dict); it calls
    ``ctx.args(...)`` before touching a device so the arguments are recorded
    even when the call fails.  ``may_fail`` marks a step whose failure is an
    expected finding (explain-map's map attempt): the run continues after it.
    ``hint`` is added to the explanation when the step fails.
    """

    name: str
    call: str
    action: Callable[[StepContext], dict[str, Any] | None]
    mutating: bool = False
    may_fail: bool = False
    hint: str = ""


@dataclass
class _Release:
    key: str
    name: str
    call: str
    arguments: dict[str, Any]
    action: Callable[[], None]


class StepContext:
    """What a step sees: the devices, the checked parameter values, shared state.

    ``values`` holds the typed parameter values; ``xs:`` and ``self`` values are
    replaced by numbers once their resolution step ran.  ``state`` passes data
    between steps; ``artifacts`` are objects a UI may show (e.g. ``"mapping"``).
    """

    def __init__(self, devices: Devices, values: dict[str, Any], artifacts: dict[str, Any]):
        self.devices = devices
        self.values = values
        self.state: dict[str, Any] = {}
        self.artifacts = artifacts
        self._releases: list[_Release] = []
        self._arguments: dict[str, Any] = {}
        self._explanation = ""
        self.cancel = threading.Event()
        """Set by :meth:`ProbeRun.cleanup` from another thread: a long step should end."""

    def check_cancelled(self) -> None:
        """Raise :class:`StepFailed` once the run is being cleaned up (long steps call it)."""
        if self.cancel.is_set():
            raise StepFailed("cancelled: the probe run is being cleaned up",
                             "The step was stopped so its grants and ports can be released.")

    def wait_events(self, channel: Any, left: float) -> list[int]:
        """``channel.wait`` for at most ``left`` seconds, in slices that notice a cancel."""
        self.check_cancelled()
        fired: list[int] = channel.wait(max(0.0, min(left, CANCEL_SLICE_S)))
        return fired

    def args(self, **arguments: Any) -> None:
        """Record the arguments of the call the current step is about to make."""
        self._arguments.update(arguments)

    def explain(self, text: str) -> None:
        """Set the explanation shown for the current step when it succeeds."""
        self._explanation = text

    def hold(
        self,
        key: str,
        name: str,
        call: str,
        release: Callable[[], None],
        **arguments: Any,
    ) -> None:
        """Register the release of something just acquired (runs in reverse order)."""
        self._releases.append(_Release(key, name, call, arguments, release))

    def drop(self, key: str) -> None:
        """Forget a registered release: a step released the thing itself."""
        self._releases = [r for r in self._releases if r.key != key]

    def holding(self, key: str) -> bool:
        """Whether a release registered under ``key`` is still pending."""
        return any(r.key == key for r in self._releases)

    def _begin_step(self) -> None:
        self._arguments = {}
        self._explanation = ""
