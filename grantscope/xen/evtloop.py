"""The C inner loop of event-channel round trips.

``pingpong`` measures the channel, not the interpreter: when the compiled module
``grantscope.xen._evtloop`` imports (:mod:`grantscope.xen.compiled`), the round trips run in C
over the channels' fds; otherwise the caller runs its pure-Python loop and reports
:func:`~grantscope.xen.compiled.unavailable_reason`.  The samples come back in seconds, as the
Python loop's do, so one statistics function serves both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grantscope.xen import abi
from grantscope.xen.compiled import load, split_error, unavailable_reason
from grantscope.xen.errors import from_oserror

C_LOOP = "c"
PYTHON_LOOP = "python"
# Round trips per call into C: between calls the caller's cancel check runs.
CHUNK = 64
_OPS = ("IOCTL_EVTCHN_NOTIFY", "poll", "read", "write")


def syscall_error(code: int, fd: int, path: str | None) -> Exception:
    """The explained error of an event-channel syscall the C code reports as
    ``op * 1000 + errno`` (op 10-13)."""
    op, exc = split_error(code)
    return from_oserror(exc, _OPS[op - 10], {"fd": fd}, path=path)


class Timeout(Exception):
    """No answer within the timeout: ``loopback`` tells which end got nothing, ``timed``
    how many round trips were timed before it."""

    def __init__(self, index: int, loopback: bool, timed: int) -> None:
        super().__init__(index, loopback, timed)
        self.index, self.loopback, self.timed = index, loopback, timed


def round_trips(send: Any, send_port: int, recv: Any, recv_port: int, echo: Any | None,
                echo_port: int | None, count: int, timeout: float, warmup: int,
                check: Callable[[], None]) -> list[float]:
    """Time ``count`` round trips after ``warmup`` untimed ones in C; the samples in seconds.

    ``check`` runs between chunks of :data:`CHUNK` round trips and after a signal (it may
    raise to stop).  No answer raises :class:`Timeout`; a failing syscall its
    :mod:`grantscope.xen.errors` error.
    """
    loaded = load()
    if loaded is None:
        raise RuntimeError(unavailable_reason())
    ffi, lib = loaded
    total = warmup + count
    buf = ffi.new("double[]", max(total, 1))
    failure, err = ffi.new("int *"), ffi.new("int *")
    send_fd, recv_fd = send.fileno(), recv.fileno()
    echo_fd = echo.fileno() if echo is not None else -1
    done = 0
    while done < total:
        check()
        step = min(CHUNK, total - done)
        ran = lib.gs_round_trips(send_fd, send_port, recv_fd, recv_port, echo_fd,
                                 echo_port or 0, abi.IOCTL_EVTCHN_NOTIFY, step, timeout,
                                 buf + done, failure, err)
        done += ran
        code = failure[0]
        if code in (1, 2):
            raise Timeout(done, code == 1, max(0, done - warmup))
        if code == 4:
            fd = send_fd if err[0] // 1000 == 10 else recv_fd
            raise syscall_error(err[0], fd, getattr(send, "path", None))
        # 0: the chunk ran; 3: a signal interrupted a wait, which check() (or the
        # interpreter, on return) handles before the loop goes on.
    return list(ffi.unpack(buf, total))[warmup:]
