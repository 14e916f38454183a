"""Granting pages of this domain to another domain through /dev/xen/gntalloc.

The kernel allocates zeroed pages and grants them (read-only unless
``GNTALLOC_FLAG_WRITABLE``); the offering side maps them read-write to fill them.
Deallocation only drops our reference: the kernel ends the grant once the peer has
unmapped, because Xen cannot force a grant to end.
"""

from __future__ import annotations

import fcntl
import os

from grantscope.xen import abi
from grantscope.xen._fd import check_domid, check_range, open_device
from grantscope.xen._pages import GrantPages, MappedPages
from grantscope.xen.errors import from_oserror
from grantscope.xen.readonly import refuse_if_readonly

GNTALLOC_PATH = "/dev/xen/gntalloc"
PAGE_SIZE = abi.PAGE_SIZE
MAX_PAGES = 1024  # gntalloc's default global limit; larger requests cannot succeed

_ffi = abi.ffi
_DEALLOC = abi.packed("struct ioctl_gntalloc_dealloc_gref")


class GrantOffer(GrantPages):
    """``pages`` fresh pages of this domain granted to ``domid``.

    A context manager that owns its fd; :meth:`close` unmaps and deallocates
    (idempotent).  ``grefs`` are the references to publish; ``page`` is a writable
    memoryview of all the pages (this side can always write its own pages;
    ``writable`` is about the peer's access).
    """

    def __init__(self, domid: int, pages: int = 1, *, writable: bool = False,
                 path: str = GNTALLOC_PATH) -> None:
        super().__init__()
        self.domid = check_domid(domid)
        count = check_range(pages, "pages", 1, MAX_PAGES)
        refuse_if_readonly(f"granting {count} page(s) to domain {domid} (gntalloc)")
        self.writable = bool(writable)
        self.path = path
        self._fd = open_device(path)
        try:
            self.grefs: tuple[int, ...] = self._alloc(count)
            try:
                self._pages = MappedPages(self._fd, PAGE_SIZE * count, self._index,
                                          writable=True)
            except OSError as exc:
                raise from_oserror(exc, "mmap", {"domid": domid, "grefs": list(self.grefs)},
                                   path=path) from None
        except BaseException:
            self._dealloc_quietly()
            os.close(self._fd)
            self._fd = -1
            raise
        self.page: memoryview = self._pages.view

    def _alloc(self, count: int) -> tuple[int, ...]:
        size = max(_ffi.sizeof("struct ioctl_gntalloc_alloc_gref"), 16 + 4 * count)
        raw = _ffi.new("char[]", size)
        op = _ffi.cast("struct ioctl_gntalloc_alloc_gref *", raw)
        op.domid = self.domid
        op.flags = abi.GNTALLOC_FLAG_WRITABLE if self.writable else 0
        op.count = count
        try:
            fcntl.ioctl(self._fd, abi.IOCTL_GNTALLOC_ALLOC_GREF, _ffi.buffer(raw))
        except OSError as exc:
            raise from_oserror(exc, "IOCTL_GNTALLOC_ALLOC_GREF",
                               {"domid": self.domid, "pages": count, "writable": self.writable},
                               path=self.path) from None
        self._index = int(op.index)
        ids = _ffi.cast("uint32_t *", op.gref_ids)
        return tuple(int(ids[i]) for i in range(count))

    _NOTIFY_CALL = "IOCTL_GNTALLOC_SET_UNMAP_NOTIFY"
    _NOTIFY_REQUEST = abi.IOCTL_GNTALLOC_SET_UNMAP_NOTIFY
    _NOTIFY_STRUCT = abi.packed("struct ioctl_gntalloc_unmap_notify")
    _KIND = "grant offer"

    def _release_grants(self) -> None:
        self._dealloc()

    def _dealloc(self) -> None:
        if self._index < 0:
            return
        index, self._index = self._index, -1
        try:
            fcntl.ioctl(self._fd, abi.IOCTL_GNTALLOC_DEALLOC_GREF,
                        _DEALLOC.pack(index, len(self.grefs)))
        except OSError as exc:
            raise from_oserror(exc, "IOCTL_GNTALLOC_DEALLOC_GREF",
                               {"index": index, "count": len(self.grefs)},
                               path=self.path) from None

    def _dealloc_quietly(self) -> None:
        # Only on a failed construction: closing the fd releases the grants anyway.
        if self._index >= 0 and hasattr(self, "grefs"):
            try:
                self._dealloc()
            except Exception:
                self._index = -1

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("rw" if self.writable else "ro")
        return f"<GrantOffer to={self.domid} grefs={list(self.grefs)} peer-{state}>"
