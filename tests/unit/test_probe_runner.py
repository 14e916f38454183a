"""The one driver of every front-end (grantscope.probing.runner): signals, cleanup, exit status.

``map``, ``offer``, ``notify``, ``pingpong`` and ``probe run`` all drive their probe through it;
their own outputs are checked in test_cli_devices.py, test_cli_probe_frontend.py and
test_probe_cli.py.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest
from fake_devices import FakeDevices

from grantscope.errors import UsageError
from grantscope.probing.engine import Probe, ProbeRun, Step, StepContext, StepRecord
from grantscope.probing.params import Param
from grantscope.probing.records import ProbeInterrupted
from grantscope.probing.runner import RunHooks, drive, run_probe


class _Probe(Probe):
    name = "runner-test"
    summary = "acquire, then act"
    params = (Param("n", "int", "1", "a number"),)

    def __init__(self, act: Callable[[StepContext], None]) -> None:
        self._act = act

    def check_values(self, values: dict[str, Any]) -> None:
        if values["n"] < 0:
            raise UsageError("n must not be negative")

    def build_steps(self, values: dict[str, Any]) -> list[Step]:
        def acquire(ctx: StepContext) -> dict[str, Any]:
            ctx.hold("thing", "release the thing", "release", lambda: self.released.append(
                (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))))
            return {}

        def act(ctx: StepContext) -> dict[str, Any]:
            self._act(ctx)
            return {}

        self.released: list[tuple[Any, Any]] = []
        return [Step("acquire", "acquire", acquire), Step("act", "act", act)]


class _ClosingDevices(FakeDevices):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def _nothing(ctx: StepContext) -> None:
    return None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_is_recorded_by_its_step_then_everything_is_released(
        sig: signal.Signals) -> None:
    def killed(ctx: StepContext) -> None:
        os.kill(os.getpid(), sig)  # the handler raises at the next bytecode

    probe, devices = _Probe(killed), _ClosingDevices()
    seen: list[StepRecord] = []
    before = signal.getsignal(sig)
    done = run_probe(probe, {}, devices, RunHooks(on_step=seen.append))
    assert isinstance(done.interrupted, ProbeInterrupted) and done.interrupted.signum == sig
    assert done.exit_code == 128 + sig.value
    assert [(r.name, r.ok) for r in seen] == [("acquire", True), ("act", False)]
    assert sig.name in seen[-1].explanation
    assert [r.name for r in done.cleanup] == ["release the thing"]
    # The cleanup ran with Ctrl-C and the stop signals ignored; the handlers are back after.
    assert probe.released == [(signal.SIG_IGN, signal.SIG_IGN)]
    assert signal.getsignal(sig) == before and devices.closed == 1


def test_ctrl_c_exits_130_after_the_same_cleanup() -> None:
    def interrupted(ctx: StepContext) -> None:
        raise KeyboardInterrupt

    probe = _Probe(interrupted)
    done = run_probe(probe, {}, FakeDevices())
    assert isinstance(done.interrupted, KeyboardInterrupt) and done.exit_code == 130
    assert len(probe.released) == 1


def test_before_may_stop_the_run_and_last_sees_what_is_held() -> None:
    held: list[bool] = []

    def last(run: ProbeRun) -> None:
        held.append(run.state == {} and not run.ok)

    probe = _Probe(_nothing)
    run = ProbeRun(probe, {}, FakeDevices())
    done = drive(run, RunHooks(before=lambda run: run.next_index == 0, last=last))
    assert done.stopped and done.exit_code == 1 and held == [True]
    assert [r.name for r in run.records] == ["acquire", "release the thing"]


def test_exit_status_of_a_completed_run_and_of_a_failed_release() -> None:
    assert run_probe(_Probe(_nothing), {}, FakeDevices()).exit_code == 0

    def broken_release() -> None:
        raise OSError(errno.EIO, "the release failed")

    def fails_to_release(ctx: StepContext) -> None:
        ctx.hold("other", "release the other", "release", broken_release)

    done = run_probe(_Probe(fails_to_release), {}, FakeDevices())
    assert done.run.ok and done.exit_code == 1
    assert done.cleanup_problems() == ["the release failed"]


def test_values_refused_before_any_step_still_close_the_devices() -> None:
    devices = _ClosingDevices()
    with pytest.raises(UsageError):
        run_probe(_Probe(_nothing), {"n": "-1"}, devices)
    assert devices.closed == 1 and devices.calls == []
