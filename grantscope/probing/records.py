"""What a probe run produces and how it ends: a :class:`StepRecord` per step or release, and
the two exceptions a step may end with (:class:`StepFailed`, :class:`ProbeInterrupted`).

Kept apart from the engine (:mod:`grantscope.probing.engine`, which re-exports them) so the
front-ends and the TUI can read records without the engine's machinery.
"""

from __future__ import annotations

import errno as errno_mod
import signal
from dataclasses import asdict, dataclass
from typing import Any

from grantscope.errors import GrantscopeError

__all__ = ["ProbeInterrupted", "StepFailed", "StepRecord"]


class ProbeInterrupted(BaseException):
    """Raised in the main thread on SIGTERM or SIGHUP to stop a probe
    (:func:`grantscope.probing.runner.signals_as_interrupt`).

    It derives from BaseException, like KeyboardInterrupt, so no ``except
    Exception`` in a step swallows it.  It names the signal (a number or a name such as
    ``"SIGTERM"``): ``str()`` is the name and :attr:`signum` the number, so a front-end
    exits 128+n.
    """

    def __init__(self, which: int | str = "SIGTERM") -> None:
        try:
            sig = signal.Signals[which] if isinstance(which, str) else signal.Signals(which)
        except (KeyError, ValueError):
            sig = signal.SIGTERM
        super().__init__(sig.name)
        self.signum = int(sig.value)


class StepFailed(GrantscopeError):
    """Raised by a step to fail without a device error (a timeout, a wrong byte)."""

    def __init__(
        self,
        message: str,
        explanation: str = "",
        *,
        errno: int | None = None,
        result: dict[str, Any] | None = None,
    ):
        super().__init__(message, explanation)
        self.errno = errno
        self.result = result or {}


@dataclass(frozen=True)
class StepRecord:
    """What one step (or one release during cleanup) did.

    ``index`` is the step's position in :attr:`ProbeRun.step_names` (0-based);
    cleanup records continue after the last step.  ``phase`` is ``"step"`` or
    ``"cleanup"``.
    """

    index: int
    name: str
    call: str
    arguments: dict[str, Any]
    ok: bool
    result: dict[str, Any]
    errno: int | None
    explanation: str
    duration_s: float
    mutating: bool
    phase: str = "step"

    @property
    def errno_name(self) -> str | None:
        """``EINVAL`` for 22, None when there is no errno."""
        if self.errno is None:
            return None
        return errno_mod.errorcode.get(self.errno, str(self.errno))

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-ready object (``errno_name`` added)."""
        data = asdict(self)
        data["errno_name"] = self.errno_name
        return data
