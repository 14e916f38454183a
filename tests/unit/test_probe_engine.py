"""The probe engine against fake devices: records, step-by-step, cleanup, readonly, xs:."""

from __future__ import annotations

from typing import Any

import pytest
from fake_devices import FakeDevices

from grantscope.errors import UsageError
from grantscope.probing.engine import (
    Probe,
    ProbeInterrupted,
    ProbeRun,
    Step,
    StepContext,
    StepFailed,
    StepRecord,
)
from grantscope.probing.params import Param
from grantscope.xen.errors import XenError


def _acquire(key: str) -> Step:
    def action(ctx: StepContext) -> dict[str, Any]:
        ctx.args(what=key)
        ctx.hold(key, f"release {key}", "release", lambda: ctx.devices.calls.append(("rel", key)))
        return {"got": key}

    return Step(f"acquire {key}", "acquire", action, mutating=True)


def _fail(exc: BaseException, *, may_fail: bool = False) -> Step:
    def action(ctx: StepContext) -> dict[str, Any]:
        ctx.args(about="to fail")
        raise exc

    return Step("fail", "failing call", action, may_fail=may_fail, hint="try the other probe")


def _look() -> Step:
    def action(ctx: StepContext) -> dict[str, Any]:
        ctx.args(looking=True)
        ctx.explain("looked")
        return {"n": ctx.values["n"]}

    return Step("look", "look", action)


class _Scripted(Probe):
    name = "scripted"
    summary = "test probe"
    params = (Param("n", "int", "1", "a number"), Param("gref", "gref", "0", "a gref"))
    mutating = True

    def __init__(self, steps: list[Step]):
        self._script = steps

    def build_steps(self, values: dict[str, Any]) -> list[Step]:
        return list(self._script)


def test_records_have_the_agreed_shape_and_step_by_step_advances() -> None:
    devices = FakeDevices()
    probe = _Scripted([_acquire("a"), _look()])
    with ProbeRun(probe, {"n": "7"}, devices) as run:
        assert run.step_names == ["acquire a", "look"]
        assert run.next_index == 0 and not run.done
        assert run.next_is_mutating() is True
        first = run.run_next()
        assert run.next_index == 1 and not run.done
        assert run.next_is_mutating() is False
        second = run.run_next()
        assert run.done and run.ok
    assert isinstance(first, StepRecord)
    assert (first.index, first.name, first.call, first.ok) == (0, "acquire a", "acquire", True)
    assert first.arguments == {"what": "a"} and first.result == {"got": "a"}
    assert first.errno is None and first.mutating is True and first.duration_s >= 0
    assert second.result == {"n": 7} and second.explanation == "looked"
    data = first.to_json()
    assert set(data) >= {"index", "name", "call", "arguments", "ok", "result", "errno",
                         "errno_name", "explanation", "duration_s", "mutating", "phase"}


def test_cleanup_runs_in_reverse_and_is_recorded_once() -> None:
    devices = FakeDevices()
    run = ProbeRun(_Scripted([_acquire("a"), _acquire("b")]), {}, devices)
    with run:
        run.run_all()
    released = [c[1] for c in devices.calls if c[0] == "rel"]
    assert released == ["b", "a"]
    cleanup = [r for r in run.records if r.phase == "cleanup"]
    assert [r.name for r in cleanup] == ["release b", "release a"]
    assert [r.index for r in cleanup] == [2, 3]
    assert run.cleanup() == []  # a second call releases nothing again


def test_failure_is_a_record_not_an_exception_and_stops_the_run() -> None:
    devices = FakeDevices()
    err = XenError("map failed", "gntdev said no", errno=22, call="mmap",
                   arguments={"domid": 3}, causes=["the grant is not for you"])
    run = ProbeRun(_Scripted([_acquire("a"), _fail(err), _look()]), {}, devices)
    with run:
        records = run.run_all()
    assert [r.ok for r in records] == [True, False]
    failed = records[1]
    assert failed.errno == 22 and failed.errno_name == "EINVAL"
    assert "map failed" in failed.explanation and "the grant is not for you" in failed.explanation
    assert failed.explanation.count("the grant is not for you") == 1
    assert failed.explanation.endswith("try the other probe")
    assert failed.arguments == {"about": "to fail", "domid": 3}
    assert failed.result["error"]["errno_name"] == "EINVAL"
    assert run.done and not run.ok and run.next_index == 2
    assert [c[1] for c in devices.calls if c[0] == "rel"] == ["a"]


def test_unexpected_exception_and_oserror_become_records() -> None:
    for exc, errno in ((ValueError("boom"), None), (OSError(13, "Permission denied"), 13)):
        with ProbeRun(_Scripted([_fail(exc)]), {}, FakeDevices()) as run:
            (record,) = run.run_all()
        assert not record.ok and record.errno == errno
        assert ("ValueError" in record.explanation) == (errno is None)


def test_may_fail_step_lets_the_run_continue() -> None:
    run = ProbeRun(_Scripted([_fail(StepFailed("nope"), may_fail=True), _look()]), {},
                   FakeDevices())
    with run:
        records = run.run_all()
    assert [r.ok for r in records] == [False, True]
    assert run.ok


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), ProbeInterrupted("SIGTERM")])
def test_cleanup_runs_on_interrupt(interrupt: BaseException) -> None:
    devices = FakeDevices()
    run = ProbeRun(_Scripted([_acquire("a"), _fail(interrupt), _look()]), {}, devices)
    with pytest.raises(type(interrupt)), run:
        run.run_all()
    assert [c[1] for c in devices.calls if c[0] == "rel"] == ["a"]
    interrupted = run.records[1]
    assert not interrupted.ok and "interrupted" in interrupted.explanation
    assert run.done and [r.phase for r in run.records] == ["step", "step", "cleanup"]


def test_cleanup_continues_after_a_failing_release() -> None:
    devices = FakeDevices()

    def bad_release(ctx: StepContext) -> dict[str, Any]:
        def boom() -> None:
            raise OSError(5, "Input/output error")

        ctx.hold("bad", "release bad", "release", boom)
        return {}

    steps = [_acquire("a"), Step("bad", "bad", bad_release), _acquire("c")]
    with ProbeRun(_Scripted(steps), {}, devices) as run:
        run.run_all()
    cleanup = [r for r in run.records if r.phase == "cleanup"]
    assert [(r.name, r.ok) for r in cleanup] == [
        ("release c", True), ("release bad", False), ("release a", True)]
    assert cleanup[1].errno == 5


def test_readonly_refuses_a_mutating_probe_before_any_device_call() -> None:
    devices = FakeDevices()
    with pytest.raises(UsageError) as info:
        ProbeRun(_Scripted([_acquire("a")]), {}, devices, readonly=True)
    assert "--readonly" in info.value.message and info.value.exit_code == 2
    assert devices.calls == []


def test_run_next_after_done_is_a_usage_error() -> None:
    with ProbeRun(_Scripted([_look()]), {}, FakeDevices()) as run:
        run.run_all()
        with pytest.raises(UsageError):
            run.run_next()


def test_xs_value_is_resolved_by_a_recorded_step() -> None:
    devices = FakeDevices(store={"/local/domain/3/data/gref": b"42"})
    probe = _Scripted([_look()])
    with ProbeRun(probe, {"gref": "xs:/local/domain/3/data/gref"}, devices) as run:
        assert run.step_names == ["read gref from XenStore", "look"]
        record = run.run_next()
        assert record.ok and record.result["gref"] == 42
        assert record.arguments == {"path": "/local/domain/3/data/gref"}
        assert run.current_values["gref"] == 42


@pytest.mark.parametrize(
    ("stored", "expected"),
    [(b"0x2a", '"0x2a"'), (b"4\n2", "4\\n2"), (b"", '""'), (b"12ab", '"12ab"')],
)
def test_xs_value_that_is_not_decimal_fails_naming_path_and_bytes(
    stored: bytes, expected: str
) -> None:
    path = "/local/domain/3/data/gref"
    devices = FakeDevices(store={path: stored})
    with ProbeRun(_Scripted([_acquire("a")]), {"gref": f"xs:{path}"}, devices) as run:
        records = run.run_all()
    assert len(records) == 1 and not records[0].ok
    assert path in records[0].explanation and expected in records[0].explanation
    assert not any(c[0] == "rel" for c in devices.calls)  # nothing acquired, nothing run


def test_xs_value_missing_node_fails_naming_the_path() -> None:
    with ProbeRun(_Scripted([_look()]), {"gref": "xs:/nowhere/gref"}, FakeDevices()) as run:
        (record,) = run.run_all()
    assert not record.ok and "/nowhere/gref" in record.explanation
    assert "does not exist" in record.explanation


def test_readonly_refuses_a_mutating_step_even_if_the_probe_says_otherwise() -> None:
    class Sloppy(_Scripted):
        mutating = False  # wrongly declared: the engine still guards each step

    devices = FakeDevices()
    with ProbeRun(Sloppy([_look(), _acquire("a")]), {}, devices, readonly=True) as run:
        records = run.run_all()
    assert [r.ok for r in records] == [True, False]
    assert records[1].explanation == "refused: --readonly" and records[1].mutating
    assert records[1].arguments == {}  # not the previous step's
    assert not any(c[0] == "rel" for c in devices.calls)


def test_cleanup_from_another_thread_waits_for_the_running_step() -> None:
    """The TUI quitting during a step: the step is cancelled and ends before anything closes."""
    import threading
    import time as _time

    from fake_devices import FakeDevices as _Fake

    from grantscope.probing.engine import ProbeRun as _Run
    from grantscope.probing.registry import find_probe

    class Watched(_Fake):
        """Records whether an event channel was closed while a wait was running."""

        in_wait = False
        closed_under_wait = False

    devices = Watched(self_domid=0)
    real_channel = devices.event_channel

    def channel() -> Any:
        ch = real_channel()
        real_wait, real_close = ch.wait, ch.close

        def wait(timeout: float) -> list[int]:
            devices.in_wait = True
            _time.sleep(min(timeout, 0.05))
            devices.in_wait = False
            return list(real_wait(0))

        def close() -> None:
            devices.closed_under_wait |= devices.in_wait
            real_close()

        ch.wait, ch.close = wait, close  # type: ignore[method-assign]
        return ch

    devices.event_channel = channel  # type: ignore[method-assign]
    run = _Run(find_probe("offer-page"), {"domid": "0", "hold": "60"}, devices)
    worker = threading.Thread(target=run.run_all)
    worker.start()
    deadline = _time.monotonic() + 5
    while not (run.next_index >= 4 and devices.in_wait) and _time.monotonic() < deadline:
        _time.sleep(0.01)
    started = _time.monotonic()
    cleanup = run.cleanup()
    worker.join(5)
    assert not worker.is_alive() and _time.monotonic() - started < 5
    hold = [r for r in run.records if r.name == "hold the offer for the peer"]
    assert hold and not hold[0].ok and "cancelled" in hold[0].explanation
    assert [r.ok for r in cleanup] == [True, True]
    assert not devices.closed_under_wait and devices.open_handles() == []
