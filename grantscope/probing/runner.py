"""Running a probe to its end from a front-end: one driver, one signal semantics, one exit rule.

``grantscope map``, ``offer``, ``notify``, ``pingpong`` and ``probe run`` all run their probe
through :func:`drive` (or :func:`run_probe`, which builds the run first), so they share:

* the signals: SIGTERM and SIGHUP raise :class:`ProbeInterrupted` with the signal number in the
  main thread, as Ctrl-C raises KeyboardInterrupt; the step they interrupt records it;
* the cleanup: every release runs, newest first, with Ctrl-C, SIGTERM and SIGHUP ignored so a
  second signal cannot cut it short; the devices are closed after it;
* the exit status: 128+n for a signal (130 for Ctrl-C), 1 for a failed or stopped run or a
  release that failed, 0 otherwise (:attr:`Outcome.exit_code`).

A front-end adds its own words through :class:`RunHooks`: a prompt or progress line before
each step, a line per step record, a last look at what the steps acquired before it is
released.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from grantscope.probing.devices import Devices
from grantscope.probing.engine import Probe, ProbeRun
from grantscope.probing.records import ProbeInterrupted, StepRecord

__all__ = [
    "STOP_SIGNALS",
    "Outcome",
    "RunHooks",
    "drive",
    "interrupt_code",
    "interrupt_name",
    "run_probe",
    "signals_as_interrupt",
    "signals_deferred",
    "signals_handled",
]

#: The signals that end a probe the way Ctrl-C does: cleanup runs, then exit 128+n.
#: SIGHUP is the SSH session that drops; SIGTERM is kill/systemd.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)

#: What ends a run early from outside: Ctrl-C, or a signal of :data:`STOP_SIGNALS`.
INTERRUPTS = (KeyboardInterrupt, ProbeInterrupted)


@contextlib.contextmanager
def signals_handled(signals: tuple[signal.Signals, ...], handler: Any) -> Iterator[None]:
    """Install ``handler`` (a function or ``signal.SIG_IGN``) for ``signals`` for the block and
    restore the previous handlers after; outside the main thread (tests calling a command from
    a thread) signals cannot be handled, and the block runs as it is."""
    old: dict[signal.Signals, Any] = {}
    try:
        for sig in signals:
            old[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: the first call fails, nothing was installed
        yield
        return
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise ProbeInterrupted(signum)


def signals_as_interrupt() -> contextlib.AbstractContextManager[None]:
    """For the block, SIGTERM and SIGHUP raise :class:`ProbeInterrupted` (with the signal
    number), so the step they interrupt is recorded and the cleanup runs."""
    return signals_handled(STOP_SIGNALS, _raise_interrupted)


def signals_deferred() -> contextlib.AbstractContextManager[None]:
    """While cleaning up, a second Ctrl-C, SIGTERM or SIGHUP must not cut the cleanup short."""
    return signals_handled((signal.SIGINT, *STOP_SIGNALS), signal.SIG_IGN)


def interrupt_code(exc: BaseException) -> int:
    """The exit status for Ctrl-C (130) or a signal turned into :class:`ProbeInterrupted`
    (128+n)."""
    if isinstance(exc, ProbeInterrupted):
        return 128 + exc.signum
    return 128 + signal.SIGINT


def interrupt_name(exc: BaseException) -> str:
    """``"SIGINT"``, ``"SIGTERM"`` or ``"SIGHUP"``."""
    if isinstance(exc, ProbeInterrupted):
        return signal.Signals(exc.signum).name
    return signal.SIGINT.name


def _go_on(run: ProbeRun) -> bool:
    return True


def _ignore_record(record: StepRecord) -> None:
    return None


def _no_last_look(run: ProbeRun) -> None:
    return None


@dataclass(frozen=True)
class RunHooks:
    """What a front-end does around the steps.

    ``before(run)`` runs before each step and returns False to stop there (``probe run
    --step``'s prompt; progress lines return True).  ``on_step(record)`` gets each step's
    record once it is made, including the record of a step a signal interrupted.
    ``last(run)`` runs after the steps, interrupted or not, while what they acquired is
    still held (``offer`` reads the page one last time).
    """

    before: Callable[[ProbeRun], bool] = _go_on
    on_step: Callable[[StepRecord], None] = _ignore_record
    last: Callable[[ProbeRun], None] = _no_last_look


@dataclass
class Outcome:
    """How a driven probe run ended: done, stopped before a step, or interrupted."""

    run: ProbeRun
    interrupted: BaseException | None
    cleanup: list[StepRecord]
    stopped: bool = False

    @property
    def failed(self) -> StepRecord | None:
        """The step that failed (not interrupted), if one did."""
        if self.interrupted is not None or not self.run.failed:
            return None
        steps = [r for r in self.run.records if r.phase == "step" and not r.ok]
        return steps[-1] if steps else None

    @property
    def exit_code(self) -> int:
        """128+n after a signal (130 Ctrl-C); 1 when a step failed, the run was stopped or a
        release failed (something may be left behind); else 0."""
        if self.interrupted is not None:
            return interrupt_code(self.interrupted)
        if self.stopped or not self.run.ok or any(not r.ok for r in self.cleanup):
            return 1
        return 0

    def raise_failure(self) -> None:
        """Re-raise the failed step's error, so a command reports it as its own (the device
        layer's message, errno and exit status: 1, or 2 for ``--readonly``)."""
        if self.failed is not None and self.run.error is not None:
            raise self.run.error

    def cleanup_problems(self) -> list[str]:
        """What the cleanup could not release, one line each."""
        return [p for r in self.cleanup if not r.ok
                for p in r.result.get("problems", [r.explanation])]


def _run_steps(run: ProbeRun, hooks: RunHooks) -> bool:
    """Run the steps with the hooks; False when ``before`` stopped the run."""
    reported = len(run.records)
    try:
        while not run.done:
            if not hooks.before(run):
                return False
            run.run_next()
            reported = _report_new(run, reported, hooks)
    finally:
        # A step a signal interrupted records it before the signal propagates: report it too.
        _report_new(run, reported, hooks)
    return True


def _report_new(run: ProbeRun, reported: int, hooks: RunHooks) -> int:
    for record in run.records[reported:]:
        if record.phase == "step":
            hooks.on_step(record)
    return len(run.records)


def drive(run: ProbeRun, hooks: RunHooks | None = None) -> Outcome:
    """Run ``run`` to its end (or until ``hooks.before`` stops it), clean up, close its
    devices; return how it ended.

    SIGTERM and SIGHUP stop it as Ctrl-C does; the cleanup then releases everything, newest
    first, with further signals ignored so none cuts it short.  Any other exception (a hook
    that cannot print) propagates after the same cleanup.
    """
    hooks = hooks if hooks is not None else RunHooks()
    interrupted: BaseException | None = None
    stopped = False
    cleanup: list[StepRecord] = []
    with signals_as_interrupt():
        try:
            try:
                stopped = not _run_steps(run, hooks)
            except INTERRUPTS as exc:
                interrupted = exc
            hooks.last(run)
        except INTERRUPTS as exc:
            interrupted = interrupted or exc
        finally:
            with signals_deferred():
                cleanup = run.cleanup()
                _close(run.devices)
    return Outcome(run, interrupted, cleanup, stopped)


def run_probe(probe: Probe, values: dict[str, Any], devices: Devices,
              hooks: RunHooks | None = None) -> Outcome:
    """Build a run of ``probe`` with ``values`` on ``devices`` and :func:`drive` it.

    Values that the probe refuses raise :class:`~grantscope.errors.UsageError` before any
    step runs; the devices are closed then too.
    """
    try:
        run = ProbeRun(probe, values, devices)
    except BaseException:
        _close(devices)
        raise
    return drive(run, hooks)


def _close(devices: Any) -> None:
    # Not every Devices has a close (tests' fakes); the CLI's close its XenStore connection.
    close = getattr(devices, "close", None)
    if close is not None:
        close()
