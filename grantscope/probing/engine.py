"""The probe engine: ordered steps, a record of each, and cleanup that always runs.

A :class:`Probe` (:mod:`grantscope.probing.probe`) declares its parameters and builds an
ordered list of :class:`Step` objects (:mod:`grantscope.probing.context`); the engine
re-exports both, with the records.  A :class:`ProbeRun` runs them one at a time
(:meth:`ProbeRun.run_next`) or all at once (:meth:`ProbeRun.run_all`); each run
produces a :class:`StepRecord` with the call, its arguments, the result, the
errno and an explanation, and a step never lets an exception escape: a failure
is a record with ``ok`` False.  A step that acquires something (a mapping, a
port, a XenStore key) registers its release; :meth:`ProbeRun.cleanup` releases
in reverse order, records each release, and runs on exit from the ``with``
block whatever happened (an error, Ctrl-C, or :class:`ProbeInterrupted`, which
:mod:`grantscope.probing.runner` raises on SIGTERM and SIGHUP).
"""

from __future__ import annotations

import errno as errno_mod
import threading
import time
from collections.abc import Mapping
from typing import Any

from grantscope.errors import GrantscopeError, UsageError
from grantscope.probing.context import Step, StepContext
from grantscope.probing.devices import Devices
from grantscope.probing.params import Param, parse_values
from grantscope.probing.probe import Probe
from grantscope.probing.records import ProbeInterrupted, StepFailed, StepRecord
from grantscope.probing.registry import load_builtin_probes

STEP_WAIT_S = 30.0  # how long cleanup waits for a running step to end

__all__ = [
    "Param",
    "Probe",
    "ProbeInterrupted",
    "ProbeRun",
    "Step",
    "StepContext",
    "StepFailed",
    "StepRecord",
    "builtin_probes",
]


def _describe_failure(exc: BaseException) -> tuple[int | None, str, dict[str, Any], dict[str, Any]]:
    """errno, explanation, extra result and call arguments for an exception from a step."""
    if isinstance(exc, StepFailed):
        text = exc.message if not exc.explanation else f"{exc.message}\n{exc.explanation}"
        return exc.errno, text, dict(exc.result), {}
    if isinstance(exc, GrantscopeError):
        err_no = getattr(exc, "errno", None)
        if not isinstance(err_no, int):
            name = getattr(exc, "errno_name", None)
            err_no = getattr(errno_mod, name, None) if isinstance(name, str) else None
        parts = [exc.message]
        if exc.explanation:
            parts.append(exc.explanation)
        # XenError already words its causes into the explanation; add them only if not.
        causes = [c for c in getattr(exc, "causes", None) or [] if c not in exc.explanation]
        if causes:
            parts.append("Likely causes:\n" + "\n".join(f"- {c}" for c in causes))
        arguments = getattr(exc, "arguments", None)
        return (
            err_no if isinstance(err_no, int) else None,
            "\n".join(parts),
            {"error": exc.to_json()},
            dict(arguments) if isinstance(arguments, dict) else {},
        )
    if isinstance(exc, OSError):
        return exc.errno, f"{exc.strerror or exc}", {}, {}
    if isinstance(exc, KeyboardInterrupt):
        return None, "interrupted (Ctrl-C) during this step", {}, {}
    if isinstance(exc, ProbeInterrupted):
        return None, f"interrupted ({exc or 'signal'}) during this step", {}, {}
    return None, f"unexpected error ({type(exc).__name__}): {exc}", {}, {}


class ProbeRun:
    """One run of a probe: step by step, with records, and cleanup that always runs.

    Use it as a context manager: leaving the ``with`` block runs :meth:`cleanup`.
    Bad parameter values, or a mutating probe with ``readonly``, raise
    :class:`UsageError` here, before any device is touched.
    """

    def __init__(
        self,
        probe: Probe,
        values: Mapping[str, Any],
        devices: Devices,
        *,
        readonly: bool = False,
    ):
        if readonly and probe.mutating:
            raise UsageError(
                f"probe {probe.name!r} changes state and --readonly refuses it",
                "It maps, grants, binds or writes something other domains can see. "
                "Run it without --readonly to allow that.",
            )
        self.probe = probe
        self.devices = devices
        self.readonly = readonly
        self.values = parse_values(probe.name, probe.params, values)
        probe.check_values(self.values)
        probe.check_host(devices, self.values)
        self.artifacts: dict[str, Any] = {}
        self._ctx = StepContext(devices, dict(self.values), self.artifacts)
        self._steps = probe.steps_for(self._ctx.values)
        self.step_names: list[str] = [s.name for s in self._steps]
        self.next_index = 0
        self.done = False
        self.failed = False
        self.records: list[StepRecord] = []
        self.error: Exception | None = None
        """The exception of the last step that failed (a front-end may report it as is)."""
        self._cleaned = False
        # Held while a step runs: cleanup (maybe from another thread, the TUI quitting)
        # waits for it, so no fd is closed under a step that still uses it.
        self._step_lock = threading.Lock()

    # -- running ---------------------------------------------------------------
    @property
    def steps(self) -> list[Step]:
        """The steps of this run, in order (a copy)."""
        return list(self._steps)

    @property
    def current_values(self) -> dict[str, Any]:
        """Parameter values as the steps see them now (``xs:``/``self`` resolved once run)."""
        return dict(self._ctx.values)

    @property
    def state(self) -> dict[str, Any]:
        """What the steps passed to each other so far (ports, bytes read, counts)."""
        return self._ctx.state

    @property
    def ok(self) -> bool:
        """Every step ran, and none failed except those allowed to."""
        return self.done and not self.failed and self.next_index == len(self._steps)

    def next_is_mutating(self) -> bool:
        """Whether the next step changes state (the TUI asks once before the first such)."""
        return not self.done and self._steps[self.next_index].mutating

    def run_next(self) -> StepRecord:
        """Run the next step and return its record (never raises for a step's failure).

        KeyboardInterrupt and :class:`ProbeInterrupted` are recorded and re-raised,
        and the run is then done; leaving the ``with`` block cleans up.
        """
        with self._step_lock:
            return self._run_next()

    def _run_next(self) -> StepRecord:
        if self.done:
            raise UsageError(f"probe {self.probe.name!r} has no step left to run")
        index = self.next_index
        step = self._steps[index]
        self.next_index += 1
        ctx = self._ctx
        ctx._begin_step()
        if step.mutating and self.readonly:
            record = self._record(index, step, False, {}, None, "refused: --readonly", 0.0)
            self._finish(failed=True)
            return record
        started = time.perf_counter()
        try:
            result = step.action(ctx) or {}
        except (KeyboardInterrupt, ProbeInterrupted) as exc:
            err_no, text, extra, _ = _describe_failure(exc)
            self._record(index, step, False, extra, err_no, text, time.perf_counter() - started)
            self._finish(failed=True)
            raise
        except Exception as exc:  # a probe never raises a traceback: every failure is a record
            duration = time.perf_counter() - started
            err_no, text, extra, arguments = _describe_failure(exc)
            for key, value in arguments.items():
                ctx._arguments.setdefault(key, value)
            if step.hint:
                text = f"{text}\n{step.hint}"
            self.error = exc
            record = self._record(index, step, False, extra, err_no, text, duration)
            if not step.may_fail:
                self._finish(failed=True)
            elif self.next_index == len(self._steps):
                self._finish(failed=False)
            return record
        duration = time.perf_counter() - started
        record = self._record(index, step, True, result, None, ctx._explanation, duration)
        if self.next_index == len(self._steps):
            self._finish(failed=False)
        return record

    def run_all(self) -> list[StepRecord]:
        """Run every remaining step (stopping at a failure); return the records made now."""
        first = len(self.records)
        while not self.done:
            self.run_next()
        return self.records[first:]

    def _finish(self, *, failed: bool) -> None:
        self.done = True
        self.failed = self.failed or failed

    def _record(
        self,
        index: int,
        step: Step,
        ok: bool,
        result: dict[str, Any],
        err_no: int | None,
        explanation: str,
        duration: float,
    ) -> StepRecord:
        record = StepRecord(
            index=index,
            name=step.name,
            call=step.call,
            arguments=dict(self._ctx._arguments),
            ok=ok,
            result=dict(result),
            errno=err_no,
            explanation=explanation,
            duration_s=duration,
            mutating=step.mutating,
        )
        self.records.append(record)
        return record

    # -- cleanup ---------------------------------------------------------------
    def cleanup(self) -> list[StepRecord]:
        """Release everything acquired, newest first; record each release.

        Runs once (a second call returns []).  A release that fails, or is
        interrupted by Ctrl-C or SIGTERM, is recorded and the others still run.
        """
        if self._cleaned:
            return []
        self._ctx.cancel.set()  # a step running in another thread stops at its next check
        if not self._step_lock.acquire(timeout=STEP_WAIT_S):
            # Never close an fd under a step that still uses it: leave the releases to the
            # kernel at exit (grants and ports) and say so.
            record = StepRecord(
                index=len(self._steps), name="cleanup", call="", arguments={}, ok=False,
                result={}, errno=None,
                explanation=f"a step was still running after {STEP_WAIT_S:g} s: nothing was "
                "released (the kernel frees grants and ports when the process exits; "
                "XenStore nodes may be left: 'grantscope report' lists them)",
                duration_s=STEP_WAIT_S, mutating=False, phase="cleanup")
            self.records.append(record)
            return [record]
        try:
            return self._cleanup()
        finally:
            self._step_lock.release()

    def _cleanup(self) -> list[StepRecord]:
        if self._cleaned:
            return []
        self._cleaned = True
        self.done = True
        made: list[StepRecord] = []
        releases = self._ctx._releases
        while releases:
            release = releases.pop()
            started = time.perf_counter()
            ok, err_no, text = True, None, ""
            extra: dict[str, Any] = {}
            try:
                release.action()
            except BaseException as exc:  # every release gets its turn, even after Ctrl-C
                ok = False
                err_no, text, extra, _ = _describe_failure(exc)
            self.artifacts.pop(release.key, None)
            record = StepRecord(
                index=len(self._steps) + len(made),
                name=release.name,
                call=release.call,
                arguments=dict(release.arguments),
                ok=ok,
                result=extra,
                errno=err_no,
                explanation=text,
                duration_s=time.perf_counter() - started,
                mutating=False,
                phase="cleanup",
            )
            made.append(record)
            self.records.append(record)
        self.artifacts.clear()
        return made

    def __enter__(self) -> ProbeRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def builtin_probes() -> list[Probe]:
    """The probes shipped with grantscope, in the order ``probe list`` shows them (the TUI
    asks the engine; :func:`grantscope.probing.registry.load_builtin_probes` loads them)."""
    return load_builtin_probes()
