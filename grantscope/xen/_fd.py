"""Opening device nodes and checking numeric arguments, with errors in words."""

from __future__ import annotations

import os

from grantscope.errors import UsageError
from grantscope.xen.errors import from_oserror


def open_device(path: str, *, nonblock: bool = False) -> int:
    """Open a /dev/xen node read-write; failures become :class:`XenError`."""
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_NONBLOCK if nonblock else 0)
    try:
        return os.open(path, flags)
    except OSError as exc:
        raise from_oserror(exc, "open", {"path": path}) from None


def check_range(value: int, what: str, low: int, high: int) -> int:
    """``value`` if ``low <= value <= high`` and an int, else :class:`UsageError`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{what} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise UsageError(f"{what} {value} is out of range ({low}..{high})")
    return value


def check_domid(domid: int) -> int:
    """A domain id that fits the 16-bit domid_t."""
    return check_range(domid, "domid", 0, 0xFFFF)


def check_u32(value: int, what: str) -> int:
    """A value that fits an unsigned 32-bit ioctl field."""
    return check_range(value, what, 0, 0xFFFFFFFF)
