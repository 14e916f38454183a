"""pingpong's two loops, C and Python, over the same stand-in channels; and the fallback.

No Xen here: each "channel" is a real :class:`EventChannel` opened on a FIFO, and the
notify ioctl number is swapped for FIONREAD (which a FIFO answers and which changes
nothing).  A FIFO opened read-write reads back what was written to it, so the port
written into it once keeps "firing": each wait reads it and the unmask write puts it
back, and every round trip gets its answer.  Both loops make the same syscalls on it;
the real channel is tested in tests/xen/test_cli_devices.py.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grantscope.probing import roundtrips, steps
from grantscope.probing.steps import NoAnswer
from grantscope.xen import abi, compiled, evtloop
from grantscope.xen.evtchn import EventChannel


@pytest.fixture
def fifo_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A factory of EventChannels over FIFOs, each holding one pending ``port``."""
    monkeypatch.setattr(abi, "IOCTL_EVTCHN_NOTIFY", termios.FIONREAD)
    made: list[EventChannel] = []

    def make(port: int) -> EventChannel:
        path = tmp_path / f"fifo{len(made)}"
        os.mkfifo(path)
        channel = EventChannel(path=str(path))
        os.write(channel.fileno(), struct.pack("=I", port))
        made.append(channel)
        return channel

    yield make
    for channel in made:
        channel._ports.clear()  # nothing was bound: close() only closes the fd
        channel.close()


class _Ctx:
    """The part of a StepContext the loops use."""

    def __init__(self) -> None:
        self.cancel_checks = 0

    def check_cancelled(self) -> None:
        self.cancel_checks += 1


def _force_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the compiled module were missing: its import fails."""
    monkeypatch.setattr(compiled, "_loaded", None)
    monkeypatch.setattr(compiled, "_reason", None)
    monkeypatch.setitem(sys.modules, "grantscope.xen._evtloop", None)


def test_the_install_built_the_c_loop() -> None:
    # The editable install compiles it where a compiler is (this machine and CI have one).
    assert compiled.available(), compiled.unavailable_reason()
    assert compiled.unavailable_reason() is None


@pytest.mark.parametrize("loopback", [False, True])
def test_both_loops_give_the_same_shape(fifo_channel: Any, monkeypatch: pytest.MonkeyPatch,
                                        loopback: bool) -> None:
    results = {}
    for loop in ("c", "python"):
        if loop == "python":
            _force_python(monkeypatch)
        recv = fifo_channel(17)
        echo = fifo_channel(9) if loopback else None
        ctx = _Ctx()
        timed = roundtrips.round_trips(ctx, recv, 17, recv, 17, echo, 9 if loopback else None,  # type: ignore[arg-type]
                                  count=200, timeout=1.0, warmup=3)
        assert timed.loop == loop
        assert len(timed.samples) == 200 and all(0 < s < 1.0 for s in timed.samples)
        assert ctx.cancel_checks >= 1
        results[loop] = steps.stats_us(timed.samples)
        if loop == "python":
            assert timed.loop_note and "not built" in timed.loop_note
        else:
            assert timed.loop_note is None
    assert set(results["c"]) == set(results["python"])
    assert results["c"]["round_trips"] == results["python"]["round_trips"] == 200


@pytest.mark.parametrize("loop", ["c", "python"])
@pytest.mark.parametrize("loopback", [False, True])
def test_no_answer_is_the_same_failure(fifo_channel: Any, monkeypatch: pytest.MonkeyPatch,
                                       loop: str, loopback: bool) -> None:
    if loop == "python":
        _force_python(monkeypatch)
    # Only port 18 ever fires on recv; a loopback's echo end does get its ping.
    recv = fifo_channel(18)
    echo, echo_port = (fifo_channel(9), 9) if loopback else (None, None)
    with pytest.raises(NoAnswer) as err:
        roundtrips.round_trips(_Ctx(), recv, 17, recv, 17, echo, echo_port,  # type: ignore[arg-type]
                          count=5, timeout=0.05, warmup=0)
    assert err.value.timed == 0
    assert "round trip 1: no answer on port 17 within 0.05 s" in err.value.message


def test_the_c_loop_runs_in_chunks_that_check_for_cancel(fifo_channel: Any) -> None:
    recv, ctx = fifo_channel(5), _Ctx()
    samples = evtloop.round_trips(recv, 5, recv, 5, None, None, count=3 * evtloop.CHUNK,
                                  timeout=1.0, warmup=0, check=ctx.check_cancelled)
    assert len(samples) == 3 * evtloop.CHUNK and ctx.cancel_checks == 3


def test_a_failing_syscall_is_explained(fifo_channel: Any,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from grantscope.xen.errors import XenError

    recv = fifo_channel(5)
    monkeypatch.setattr(abi, "IOCTL_EVTCHN_NOTIFY", 0x4004_4500)  # a FIFO answers ENOTTY
    with pytest.raises(XenError) as err:
        evtloop.round_trips(recv, 5, recv, 5, None, None, count=1, timeout=1.0, warmup=0,
                            check=lambda: None)
    assert "IOCTL_EVTCHN_NOTIFY" in str(err.value)


def test_the_cli_says_which_loop_ran(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from grantscope.cli import main

    # The demo host's channels are simulated: the Python loop runs, and says why.
    assert main(["--demo", "pingpong", "--domid", "1", "--port", "1", "--count", "3",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["loop"] == "python" and "simulated" in data["loop_note"]
    assert main(["--demo", "pingpong", "--domid", "1", "--port", "1", "--count", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "  timed by the Python loop: " + data["loop_note"]
