"""EventChannel.wait's two fast paths, the compiled one and the Python one, behave alike.

No Xen here: the channel is opened on a FIFO (as in test_evtloop.py).  A FIFO opened
read-write reads back what was written to it, so the ports written into it "fire", and the
unmask write puts them back: the next wait sees them again.
"""

from __future__ import annotations

import errno
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from grantscope.xen import compiled
from grantscope.xen.errors import XenError
from grantscope.xen.evtchn import EventChannel


def _force_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the compiled module were missing: its import fails."""
    monkeypatch.setattr(compiled, "_loaded", None)
    monkeypatch.setattr(compiled, "_reason", None)
    monkeypatch.setitem(sys.modules, "grantscope.xen._evtloop", None)


@pytest.fixture(params=["c", "python"])
def channel(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[EventChannel]:
    """An EventChannel on an empty FIFO, waiting through the path named by the param."""
    if request.param == "python":
        _force_python(monkeypatch)
    path = tmp_path / "fifo"
    os.mkfifo(path)
    ch = EventChannel(path=str(path))
    assert (ch._c_wait is not None) == (request.param == "c")
    yield ch
    ch.close()


def test_the_ports_that_fired_come_back_unmasked(channel: EventChannel) -> None:
    os.write(channel.fileno(), struct.pack("=3I", 7, 9, 4096))
    assert channel.wait(1.0) == [7, 9, 4096]
    # written back: the FIFO holds them again, as the driver unmasks them
    assert channel.wait(1.0) == [7, 9, 4096]


def test_one_port(channel: EventChannel) -> None:
    os.write(channel.fileno(), struct.pack("=I", 11))
    assert channel.wait(None) == [11]


def test_nothing_within_the_timeout_is_an_empty_list(channel: EventChannel) -> None:
    assert channel.wait(0) == []
    assert channel.wait(0.02) == []


def test_a_failing_read_is_explained(channel: EventChannel) -> None:
    fd = channel.fileno()
    os.close(fd)  # behind the channel's back: poll reports the fd invalid, read fails
    try:
        with pytest.raises(XenError) as err:
            channel.wait(1.0)
        assert err.value.errno == errno.EBADF
        assert "read" in str(err.value)
    finally:
        channel._fd = -1  # already closed


def test_a_closed_channel_says_so(channel: EventChannel) -> None:
    channel.close()
    with pytest.raises(ValueError, match="closed"):
        channel.wait(0)


def test_a_negative_timeout_does_not_block(channel: EventChannel) -> None:
    # a caller's remaining time can come out below zero: that is "now", never "forever"
    assert channel.wait(-0.5) == []
