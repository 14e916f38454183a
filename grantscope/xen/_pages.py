"""Mapping device pages into memory with libc mmap/munmap through cffi.

Shared by gntdev and gntalloc, with :class:`GrantPages`, what their objects have in
common.  The pages are exposed as a memoryview; when the
mapping is released while someone still holds a view derived from it, the range
is replaced by anonymous memory instead of being unmapped, so a stale view reads
zeros rather than crashing the interpreter on a hole in the address space.
"""

from __future__ import annotations

import fcntl
import os
import struct
import sys
from typing import Any

from grantscope.closing import Closing
from grantscope.errors import UsageError
from grantscope.xen import abi
from grantscope.xen._fd import check_range, check_u32
from grantscope.xen.errors import from_oserror


class MappedPages:
    """``length`` bytes of a device fd mapped at ``offset``; :meth:`release` unmaps them."""

    def __init__(self, fd: int, length: int, offset: int, *, writable: bool,
                 mapped: Any = None) -> None:
        """mmap the pages, or adopt ``mapped``: their address where the caller mmapped them
        (the compiled map of :mod:`grantscope.xen.gntdev`)."""
        ffi = abi.ffi
        if mapped is not None:
            ptr = mapped
        else:
            ptr = abi.libc().mmap(ffi.NULL, length, PROT_RW if writable else abi.PROT_READ,
                                  abi.MAP_SHARED, fd, offset)
            if ptr == _map_failed():
                err = ffi.errno
                raise OSError(err, _strerror(err))
        self.length = length
        self._ptr: Any = ptr
        self._buffer: Any = ffi.buffer(ptr, length)
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
        ptr = self.detach()
        if ptr is not None and abi.libc().munmap(ptr, self.length) != 0:
            err = abi.ffi.errno
            raise OSError(err, _strerror(err))

    def detach(self) -> Any:
        """Let go of the pages: the address the caller must munmap, or None when there is
        nothing to unmap (released already, or swapped for anonymous memory because a view
        still points into the range)."""
        if self._ptr is None:
            return None
        self.view.release()
        ptr, self._ptr = self._ptr, None
        # Two references: self._buffer and getrefcount's argument.  More means some
        # memoryview or buffer export still points into the range.
        shared = sys.getrefcount(self._buffer) > 2
        self._buffer = None
        if shared:
            # MAP_FIXED replaces the device mapping atomically (the old vma is closed, so
            # the grant is unmapped) with zero-filled anonymous memory.  Leaked on purpose.
            flags = abi.MAP_PRIVATE | abi.MAP_ANONYMOUS | abi.MAP_FIXED
            if abi.libc().mmap(ptr, self.length, PROT_RW, flags, -1, 0) != _map_failed():
                return None
        return ptr


PROT_RW = abi.PROT_READ | abi.PROT_WRITE  # a writable mapping's protection
_MAP_FAILED_PTR: Any = None


def _map_failed() -> Any:
    """MAP_FAILED as a ``void *`` (cdata pointers compare by address)."""
    global _MAP_FAILED_PTR
    if _MAP_FAILED_PTR is None:
        _MAP_FAILED_PTR = abi.ffi.cast("void *", abi.MAP_FAILED)
    return _MAP_FAILED_PTR


def _strerror(err: int) -> str:
    return os.strerror(err)


class GrantPages(Closing):
    """What a grant offer (gntalloc) and a grant mapping (gntdev) have in common.

    Pages of ``len(grefs)`` grants mapped into this process through a device fd:
    ``page`` (a memoryview), ``read``/``write``, ``set_unmap_notify``, and a
    :meth:`close` that releases the pages, then the grants (:meth:`_release_grants`),
    then the fd when this object owns it.  A context manager; closing is idempotent.
    """

    # the subclass names its device's SET_UNMAP_NOTIFY and what it is, for messages
    _NOTIFY_CALL: str = ""
    _NOTIFY_REQUEST: int = 0
    _NOTIFY_STRUCT: struct.Struct  # its struct ..._unmap_notify (abi.packed)
    _KIND: str = "grant pages"

    grefs: tuple[int, ...]
    page: memoryview
    path: str

    def __init__(self) -> None:
        self._pages: MappedPages | None = None
        self._index = -1
        self._fd = -1
        self._owns_fd = True

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._fd < 0

    @property
    def index(self) -> int:
        """The mmap offset the device assigned to these pages (-1 once closed)."""
        return self._index

    @property
    def size(self) -> int:
        """Bytes in all the pages."""
        return len(self.grefs) * abi.PAGE_SIZE

    def _writable_here(self) -> bool:
        """Whether this process may write the pages (the subclass says)."""
        return True

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """A copy of ``length`` bytes (default: to the end) starting at ``offset``."""
        size = self.size
        check_range(offset, "offset", 0, size)
        end = size if length is None else offset + check_range(length, "length", 0, size - offset)
        self._check_open()
        return bytes(self.page[offset:end])

    def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset``."""
        if not self._writable_here():
            raise UsageError(f"this {self._KIND} is read-only: map it writable to write")
        check_span(offset, len(data), self.size)
        self._check_open()
        self.page[offset:offset + len(data)] = data

    def set_unmap_notify(self, offset: int, *, clear_byte: bool = False,
                         port: int | None = None) -> None:
        """When these pages are released (also if this process dies): zero the byte at
        ``offset`` and/or notify ``port`` (bound in this kernel)."""
        check_span(offset, 1, self.size)
        self._check_open()
        action = (abi.UNMAP_NOTIFY_CLEAR_BYTE if clear_byte else 0) | (
            abi.UNMAP_NOTIFY_SEND_EVENT if port is not None else 0)
        evtchn = 0 if port is None else check_u32(port, "port")
        try:
            fcntl.ioctl(self._fd, self._NOTIFY_REQUEST,
                        self._NOTIFY_STRUCT.pack(self._index + offset, action, evtchn))
        except OSError as exc:
            raise from_oserror(exc, self._NOTIFY_CALL,
                               {"offset": offset, "clear_byte": clear_byte, "port": port},
                               path=self.path) from None

    def _check_open(self) -> None:
        if self._fd < 0:
            raise UsageError(f"the {self._KIND} is closed")

    def _release_grants(self) -> None:
        """Give the grants back to the device (UNMAP_GRANT_REF / DEALLOC_GREF)."""
        raise NotImplementedError

    def _release(self, pages: MappedPages | None) -> None:
        """Unmap ``pages`` (if any), then release the grants (a subclass may do both at once)."""
        if pages is not None:
            pages.release()
        self._release_grants()

    def close(self) -> None:
        """munmap the pages, release the grants, close the fd if owned (idempotent)."""
        if self._fd < 0:
            return
        try:
            pages, self._pages = self._pages, None
            self._release(pages)
        finally:
            if self._owns_fd:
                os.close(self._fd)
            self._fd = -1



def check_span(offset: int, length: int, size: int) -> None:
    """``length`` bytes at ``offset`` must fit in ``size`` (UsageError otherwise)."""
    check_range(offset, "offset", 0, size)
    if offset + length > size:
        raise UsageError(f"{length} bytes at offset {offset} do not fit in {size} bytes")
