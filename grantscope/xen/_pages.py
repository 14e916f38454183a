"""Mapping device pages into memory with libc mmap/munmap through cffi.

Shared by gntdev and gntalloc.  The pages are exposed as a memoryview; when the
mapping is released while someone still holds a view derived from it, the range
is replaced by anonymous memory instead of being unmapped, so a stale view reads
zeros rather than crashing the interpreter on a hole in the address space.
"""

from __future__ import annotations

import sys
from typing import Any

from grantscope.xen import abi


class MappedPages:
    """``length`` bytes of a device fd mapped at ``offset``; :meth:`release` unmaps them."""

    def __init__(self, fd: int, length: int, offset: int, *, writable: bool) -> None:
        prot = abi.PROT_READ | (abi.PROT_WRITE if writable else 0)
        libc = abi.libc()
        ptr = libc.mmap(abi.ffi.NULL, length, prot, abi.MAP_SHARED, fd, offset)
        if int(abi.ffi.cast("uintptr_t", ptr)) == abi.MAP_FAILED:
            err = abi.ffi.errno
            raise OSError(err, _strerror(err))
        self.length = length
        self._ptr: Any = ptr
        self._buffer: Any = abi.ffi.buffer(abi.ffi.cast("char *", ptr), length)
        view = memoryview(self._buffer)
        # A read-only mapping must never be written through: that would be SIGSEGV.
        self.view: memoryview = view if writable else view.toreadonly()
        if not writable:
            view.release()

    @property
    def address(self) -> int:
        """The virtual address of the first byte."""
        return int(abi.ffi.cast("uintptr_t", self._ptr))

    def release(self) -> None:
        """Unmap the pages (idempotent).  The grant is released by this munmap."""
        if self._ptr is None:
            return
        self.view.release()
        ptr, self._ptr = self._ptr, None
        # Two references: self._buffer and getrefcount's argument.  More means some
        # memoryview or buffer export still points into the range.
        shared = sys.getrefcount(self._buffer) > 2
        self._buffer = None
        libc = abi.libc()
        if shared:
            # MAP_FIXED replaces the device mapping atomically (the old vma is closed, so
            # the grant is unmapped) with zero-filled anonymous memory.  Leaked on purpose.
            flags = abi.MAP_PRIVATE | abi.MAP_ANONYMOUS | abi.MAP_FIXED
            out = libc.mmap(ptr, self.length, abi.PROT_READ | abi.PROT_WRITE, flags, -1, 0)
            if int(abi.ffi.cast("uintptr_t", out)) != abi.MAP_FAILED:
                return
        if libc.munmap(ptr, self.length) != 0:
            err = abi.ffi.errno
            raise OSError(err, _strerror(err))


def _strerror(err: int) -> str:
    import os

    return os.strerror(err)
