"""The compiled helper ``grantscope.xen._evtloop``, when it was built (else: why not).

It holds the hot paths: pingpong's round trips (:mod:`grantscope.xen.evtloop`),
:meth:`EventChannel.wait`, and a gntdev map and unmap.  :func:`fast_path` hands each one out;
their callers keep a Python path that makes the same syscalls for when it is not built (no C
compiler or Python headers at install, see :mod:`grantscope.xen._evtloop_build`).
"""

from __future__ import annotations

import errno as errno_mod
import os
from typing import Any

_loaded: tuple[Any, Any] | None = None
_reason: str | None = None


def load() -> tuple[Any, Any] | None:
    """(ffi, lib) of the compiled module, or None when it does not import (see
    :func:`unavailable_reason`); tried once."""
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
    """True when the compiled module imports."""
    return load() is not None


def unavailable_reason() -> str | None:
    """Why the compiled module cannot run (None when it can)."""
    load()
    return _reason


def fast_path(name: str) -> tuple[Any, Any] | None:
    """(ffi, the compiled function ``name``) for a fast path, or None (not built, or built
    before that function existed)."""
    loaded = load()
    if loaded is None:
        return None
    function = getattr(loaded[1], name, None)
    return None if function is None else (loaded[0], function)


def split_error(code: int) -> tuple[int, OSError]:
    """A C error code ``op * 1000 + errno`` as (op, the OSError of that errno)."""
    op, number = divmod(code, 1000)
    return op, OSError(number, os.strerror(number) or errno_mod.errorcode.get(number, ""))
