"""The C inner loop of event-channel round trips, when it was built (else: why not).

The same compiled module holds the hot paths of :meth:`EventChannel.wait` and of a gntdev
map and unmap; :func:`compiled` hands them out, and their callers keep a Python path that
makes the same syscalls for when it is not built.

``pingpong`` measures the channel, not the interpreter: when the compiled module
``grantscope.xen._evtloop`` (see :mod:`grantscope.xen._evtloop_build`) imports, the round
trips run in C over the channels' fds; otherwise the caller runs its pure-Python loop and
reports :func:`unavailable_reason`.  The samples come back in seconds, as the Python loop's
do, so one statistics function serves both.
"""

from __future__ import annotations

import errno as errno_mod
import os
from collections.abc import Callable
from typing import Any

from grantscope.xen import abi
from grantscope.xen.errors import from_oserror

C_LOOP = "c"
PYTHON_LOOP = "python"
# Round trips per call into C: between calls the caller's cancel check runs.
CHUNK = 64
_OPS = ("IOCTL_EVTCHN_NOTIFY", "poll", "read", "write")

_loaded: tuple[Any, Any] | None = None
_reason: str | None = None


def _load() -> tuple[Any, Any] | None:
    global _loaded, _reason
    if _loaded is None and _reason is None:
        try:
            from grantscope.xen._evtloop import ffi, lib
        except ImportError as exc:
            _reason = (f"the C loop is not built ({exc}); 'python -m "
                       "grantscope.xen._evtloop_build' builds it where a C compiler and the "
                       "Python headers are installed")
        else:
            _loaded = (ffi, lib)
    return _loaded


def available() -> bool:
    """True when the compiled loop imports."""
    return _load() is not None


def unavailable_reason() -> str | None:
    """Why the C loop cannot run (None when it can)."""
    _load()
    return _reason


def compiled(name: str) -> tuple[Any, Any] | None:
    """(ffi, the compiled function ``name``) for a fast path, or None (not built, or built
    before that function existed)."""
    loaded = _load()
    if loaded is None:
        return None
    function = getattr(loaded[1], name, None)
    return None if function is None else (loaded[0], function)


def c_wait() -> tuple[Any, Any] | None:
    """(ffi, the compiled ``gs_wait_once``) for :meth:`EventChannel.wait`, or None."""
    return compiled("gs_wait_once")


def split_error(code: int) -> tuple[int, OSError]:
    """A C error code ``op * 1000 + errno`` as (op, the OSError of that errno)."""
    op, number = divmod(code, 1000)
    return op, OSError(number, os.strerror(number) or errno_mod.errorcode.get(number, ""))


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
    loaded = _load()
    if loaded is None:
        raise RuntimeError(_reason)
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
