"""Read-only hypercalls through ``/dev/xen/privcmd``: today, ``GNTTABOP_query_size``.

``GNTTABOP_query_size`` tells a domain's grant-table frames in use and their maximum, with no
console output and no state changed; only dom0 may ask about another domain.  It is what
``xen-diag gnttab_query_size`` prints, asked in-process: a scrape of a host with 100 domains
must not start 100 processes (in the lab's emulated dom0 one xen-diag took 0.5 s).

The argument must sit in memory the hypervisor can read and write while the hypercall runs:
a page of ``/dev/xen/hypercall`` (Linux's privcmd-buf, what libxencall uses) when the node
exists, else a locked anonymous page (older kernels; fine for a PV dom0).
"""

from __future__ import annotations

import errno as errno_mod
import fcntl
import mmap
import os
from typing import Any

from grantscope.closing import Closing
from grantscope.xen import abi
from grantscope.xen._fd import check_domid, open_device
from grantscope.xen.errors import XenError, from_oserror
from grantscope.xen.gntstatus import status_name

__all__ = ["HYPERCALL_BUF", "PRIVCMD", "Privcmd"]

PRIVCMD = "/dev/xen/privcmd"
HYPERCALL_BUF = "/dev/xen/hypercall"


class Privcmd(Closing):
    """An open privcmd device with one hypercall-safe page; use as a context manager.

    ``privcmd``/``buffer`` name the device nodes (tests point them at stand-ins).
    """

    def __init__(self, privcmd: str = PRIVCMD, buffer: str = HYPERCALL_BUF) -> None:
        self._fd = open_device(privcmd)
        self._buf_fd: int | None = None
        try:
            self._page = self._hypercall_page(buffer)
        except BaseException:
            os.close(self._fd)
            raise
        ffi = abi.ffi
        self._view = ffi.from_buffer(self._page)  # released in close(), before the unmap
        self._arg = ffi.cast("struct gnttab_query_size *", self._view)
        self._arg_addr = int(ffi.cast("uintptr_t", self._arg))
        self._call = ffi.new("struct privcmd_hypercall *")
        self._call_bytes = ffi.buffer(self._call)

    def _hypercall_page(self, buffer: str) -> mmap.mmap:
        if os.path.exists(buffer):
            self._buf_fd = open_device(buffer)
            return mmap.mmap(self._buf_fd, abi.PAGE_SIZE, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        page = mmap.mmap(-1, abi.PAGE_SIZE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                         mmap.PROT_READ | mmap.PROT_WRITE)
        page[0:1] = b"\0"  # resident before the hypervisor writes to it
        return page

    def query_size(self, domid: int) -> tuple[int, int]:
        """The domain's grant-table frames in use and their maximum; :class:`XenError`
        (errno or GNTST status) if Xen would not say."""
        check_domid(domid)
        arg = self._arg
        arg.dom, arg.nr_frames, arg.max_nr_frames, arg.status = domid, 0, 0, 0
        call = self._call
        call.op = abi.HYPERVISOR_grant_table_op
        call.arg[0], call.arg[1], call.arg[2] = abi.GNTTABOP_query_size, self._arg_addr, 1
        args = {"domid": domid}
        try:
            fcntl.ioctl(self._fd, abi.IOCTL_PRIVCMD_HYPERCALL, self._call_bytes, True)
        except OSError as exc:
            raise from_oserror(exc, "GNTTABOP_query_size", args) from None
        if arg.status != abi.GNTST_okay:
            raise XenError(
                f"GNTTABOP_query_size(domid={domid}) failed: {status_name(arg.status)}",
                "Xen answered with a grant-table error status: for another domain than "
                "this one, only dom0 may ask, and the domain must exist.",
                errno=errno_mod.EINVAL if arg.status == abi.GNTST_bad_domain else None,
                call="GNTTABOP_query_size",
                arguments=args,
                gnttab_status=int(arg.status),
            )
        return int(arg.nr_frames), int(arg.max_nr_frames)

    def close(self) -> None:
        """Release the page and both devices (idempotent)."""
        if self._fd < 0:
            return
        self._call_bytes = None
        self._arg = None
        abi.ffi.release(self._view)
        self._page.close()
        if self._buf_fd is not None:
            os.close(self._buf_fd)
            self._buf_fd = None
        os.close(self._fd)
        self._fd = -1


    def __del__(self) -> None:
        fd: Any = getattr(self, "_fd", -1)
        if fd >= 0:
            self.close()
