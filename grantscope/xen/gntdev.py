"""Mapping other domains' grants through /dev/xen/gntdev, and GRANT_COPY.

``IOCTL_GNTDEV_MAP_GRANT_REF`` only records the refs; the hypercall happens in
``mmap()``, which turns every failure into EINVAL.  When that happens
:class:`GrantMapping` runs a one-byte ``IOCTL_GNTDEV_GRANT_COPY`` of each grant,
which reports Xen's real GNTST status, and raises a :class:`XenError` that names it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections.abc import Sequence
from typing import Any, NoReturn, Union

from grantscope._compat import slotted_dataclass
from grantscope.closing import Closing
from grantscope.errors import UsageError
from grantscope.xen import abi
from grantscope.xen import readonly as _readonly
from grantscope.xen._fd import check_domid, check_range, check_u32, open_device
from grantscope.xen._pages import PROT_RW, GrantPages, MappedPages
from grantscope.xen.compiled import fast_path, split_error
from grantscope.xen.errors import XenError, from_oserror, map_failed_error
from grantscope.xen.readonly import refuse_if_readonly

GNTDEV_PATH = "/dev/xen/gntdev"

# A local side of a copy: anything exposing the buffer protocol (dest must be writable).
# Union, not |: an alias is evaluated at import, and 3.9's types have no | (3.10).
LocalBuffer = Union[bytes, bytearray, memoryview]
PAGE_SIZE = abi.PAGE_SIZE

_ffi = abi.ffi
_UNMAP = abi.packed("struct ioctl_gntdev_unmap_grant_ref")
# struct ioctl_gntdev_map_grant_ref: the header (count, pad, index), then count grant refs.
_MAP_HEADER = abi.packed("struct ioctl_gntdev_map_grant_ref")
_REF_CODES = abi.packed("struct ioctl_gntdev_grant_ref").format.removeprefix("=")
_MAP_ONE = struct.Struct(_MAP_HEADER.format + _REF_CODES)  # the common one-page map


@slotted_dataclass(frozen=True)
class ForeignRef:
    """One side of a copy that is a grant: ``offset`` bytes into ``domid``'s grant ``gref``."""

    domid: int
    gref: int
    offset: int = 0


@slotted_dataclass(frozen=True)
class CopySegment:
    """One GRANT_COPY segment: ``length`` bytes from ``source`` to ``dest``.

    Each side is a :class:`ForeignRef` or a local buffer (``dest`` must be writable,
    e.g. a bytearray).  At least one side must be a grant.
    """

    source: ForeignRef | LocalBuffer
    dest: ForeignRef | LocalBuffer
    length: int


# The compiled map and unmap (grantscope.xen._evtloop), looked up at the first map or unmap;
# None: not built, so the Python path (the same syscalls) runs.
_C_MAP_IOCTL, _C_MUNMAP = 20, 22  # the op part of their error codes (see _evtloop_build)
_UNSET: Any = object()
_c_map: Any = _UNSET
_c_unmap: Any = _UNSET


def _compiled_map() -> tuple[Any, Any] | None:
    global _c_map
    if _c_map is _UNSET:
        _c_map = fast_path("gs_map_grants")
    return _c_map


def _compiled_unmap() -> tuple[Any, Any] | None:
    global _c_unmap
    if _c_unmap is _UNSET:
        _c_unmap = fast_path("gs_unmap_grants")
    return _c_unmap


class Gntdev(Closing):
    """One open /dev/xen/gntdev.  Mappings and copies can share it (one fd, no reopen)."""

    def __init__(self, path: str = GNTDEV_PATH) -> None:
        self.path = path
        self._fd = open_device(path)

    def fileno(self) -> int:
        """The device fd (raises ValueError once closed)."""
        if self._fd < 0:
            raise ValueError("gntdev device is closed")
        return self._fd

    def map(self, domid: int, grefs: Sequence[int], *, writable: bool = True) -> GrantMapping:
        """Map ``grefs`` of ``domid`` through this fd (the mapping does not close the fd)."""
        return GrantMapping(domid, grefs, writable=writable, path=self.path, device=self)

    def grant_copy(self, segments: Sequence[CopySegment]) -> list[int]:
        """Run one GRANT_COPY of ``segments``; the per-segment GNTST statuses."""
        return _grant_copy(self.fileno(), segments, self.path)

    def probe_grant_status(self, domid: int, gref: int) -> int:
        """Copy one byte out of ``(domid, gref)``: the GNTST status (0 when the grant is usable)."""
        return _probe(self.fileno(), domid, gref, self.path)

    def offset_for_vaddr(self, vaddr: int) -> tuple[int, int]:
        """(mmap offset, page count) of the gntdev mapping at ``vaddr`` in this process."""
        op = _ffi.new("struct ioctl_gntdev_get_offset_for_vaddr *")
        op.vaddr = vaddr
        try:
            fcntl.ioctl(self.fileno(), abi.IOCTL_GNTDEV_GET_OFFSET_FOR_VADDR, _ffi.buffer(op))
        except OSError as exc:
            raise from_oserror(exc, "IOCTL_GNTDEV_GET_OFFSET_FOR_VADDR",
                               {"vaddr": hex(vaddr)}, path=self.path) from None
        return int(op.offset), int(op.count)

    def close(self) -> None:
        """Close the fd; the kernel unmaps whatever is still mapped through it (idempotent)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)



class GrantMapping(GrantPages):
    """``len(grefs)`` pages of domain ``domid`` mapped into this process.

    A context manager that owns its fd (unless ``device`` is given, then it shares
    that :class:`Gntdev`'s fd); :meth:`close` unmaps and is idempotent.  ``page`` is
    a memoryview of all the pages (read-only when ``writable`` is False).
    """

    def __init__(
        self,
        domid: int,
        grefs: Sequence[int],
        *,
        writable: bool = True,
        path: str = GNTDEV_PATH,
        device: Gntdev | None = None,
    ) -> None:
        super().__init__()
        # The checks of check_domid/check_u32, with the common case tested inline: a map is
        # a hot path (bench/bench_floor.py), and a call per value costs more than the test.
        self.domid = domid if type(domid) is int and 0 <= domid <= 0xFFFF else check_domid(domid)
        self.grefs = tuple(grefs)
        for gref in self.grefs:
            if type(gref) is not int or not 0 <= gref <= 0xFFFFFFFF:
                check_u32(gref, "gref")
        if not self.grefs:
            raise UsageError("map needs at least one gref")
        self.writable = bool(writable)
        if self.writable and _readonly._depth:  # the hot path: one attribute read
            refuse_if_readonly(f"a writable map of domain {domid}'s grant(s) (map read-only)")
        self.path = path
        self._owns_fd = device is None
        self._fd = open_device(path) if device is None else device.fileno()
        try:
            compiled = _compiled_map()
            if compiled is not None:
                self._map_compiled(compiled, len(self.grefs))
            else:
                self._map()
        except BaseException:
            if self._owns_fd:
                os.close(self._fd)
            self._fd = -1
            raise
        assert self._pages is not None
        self.page: memoryview = self._pages.view

    def _map(self) -> None:
        count = len(self.grefs)
        # struct ioctl_gntdev_map_grant_ref: count, pad, index (OUT), then (domid, ref) pairs.
        # Packed with struct rather than cffi: the fewest interpreter steps on the hot path.
        if count == 1:
            buf = bytearray(_MAP_ONE.pack(1, 0, 0, self.domid, self.grefs[0]))
        else:
            fields: list[int] = [count, 0, 0]
            for gref in self.grefs:
                fields += (self.domid, gref)
            buf = bytearray(struct.pack(_MAP_HEADER.format + _REF_CODES * count, *fields))
        try:
            fcntl.ioctl(self._fd, abi.IOCTL_GNTDEV_MAP_GRANT_REF, buf)
        except OSError as exc:
            raise from_oserror(exc, "IOCTL_GNTDEV_MAP_GRANT_REF",
                               {"domid": self.domid, "grefs": list(self.grefs)},
                               path=self.path) from None
        self._index = _MAP_HEADER.unpack_from(buf)[2]
        try:
            self._pages = MappedPages(self._fd, PAGE_SIZE * count, self._index,
                                      writable=self.writable)
        except OSError as exc:
            self._mmap_failed(exc)

    def _map_compiled(self, compiled: tuple[Any, Any], count: int) -> None:
        """The same two syscalls as the Python path, in one call into C (the hot path)."""
        ffi, map_grants = compiled
        out = ffi.new("uint64_t[2]")  # the grants' mmap offset, the error code
        prot = PROT_RW if self.writable else abi.PROT_READ
        addr = map_grants(self._fd, abi.IOCTL_GNTDEV_MAP_GRANT_REF, self.domid, self.grefs,
                          count, prot, out)
        if addr == ffi.NULL:
            op, exc = split_error(out[1])
            if op == _C_MAP_IOCTL:
                raise from_oserror(exc, "IOCTL_GNTDEV_MAP_GRANT_REF",
                                   {"domid": self.domid, "grefs": list(self.grefs)},
                                   path=self.path) from None
            self._index = out[0]
            self._mmap_failed(exc)
        self._index = out[0]
        self._pages = MappedPages(self._fd, PAGE_SIZE * count, self._index,
                                  writable=self.writable, mapped=addr)

    def _mmap_failed(self, exc: OSError) -> NoReturn:
        """Unmap the grants whose mmap failed and raise what went wrong: Xen's GNTST status
        of the failing grant when mmap said EINVAL (a hypercall failure)."""
        diagnosis = self._diagnose() if exc.errno == errno.EINVAL else None
        self._unmap_ioctl()
        if diagnosis is not None:
            bad_gref, status = diagnosis
            raise map_failed_error(exc, self.domid, self.grefs, writable=self.writable,
                                   failing_gref=bad_gref, status=status) from None
        raise from_oserror(exc, "mmap", {"domid": self.domid, "grefs": list(self.grefs),
                                         "writable": self.writable},
                           path=self.path) from None

    def _diagnose(self) -> tuple[int | None, int | None]:
        """(first gref whose GRANT_COPY fails, its status); (None, 0) if all copy fine."""
        try:
            for gref in self.grefs:
                status = _probe(self._fd, self.domid, gref, self.path)
                if status != 0:
                    return gref, status
        except XenError:
            return None, None
        return None, 0

    def _unmap_ioctl(self) -> None:
        if self._index < 0:
            return
        index, self._index = self._index, -1
        try:
            fcntl.ioctl(self._fd, abi.IOCTL_GNTDEV_UNMAP_GRANT_REF,
                        _UNMAP.pack(index, len(self.grefs), 0))
        except OSError as exc:
            raise from_oserror(exc, "IOCTL_GNTDEV_UNMAP_GRANT_REF",
                               {"index": index, "count": len(self.grefs)},
                               path=self.path) from None

    _NOTIFY_CALL = "IOCTL_GNTDEV_SET_UNMAP_NOTIFY"
    _NOTIFY_REQUEST = abi.IOCTL_GNTDEV_SET_UNMAP_NOTIFY
    _NOTIFY_STRUCT = abi.packed("struct ioctl_gntdev_unmap_notify")
    _KIND = "grant mapping"

    def _writable_here(self) -> bool:
        return self.writable

    def _release_grants(self) -> None:
        self._unmap_ioctl()

    def _release(self, pages: MappedPages | None) -> None:
        compiled = _compiled_unmap()
        if compiled is None or self._index < 0:
            super()._release(pages)
            return
        # munmap and UNMAP_GRANT_REF in one call into C (the hot path)
        ffi, unmap = compiled
        addr = pages.detach() if pages is not None else None
        index, self._index = self._index, -1
        code = unmap(self._fd, abi.IOCTL_GNTDEV_UNMAP_GRANT_REF,
                     ffi.NULL if addr is None else addr, index, len(self.grefs))
        if code == 0:
            return
        op, exc = split_error(code)
        if op == _C_MUNMAP:
            raise exc
        raise from_oserror(exc, "IOCTL_GNTDEV_UNMAP_GRANT_REF",
                           {"index": index, "count": len(self.grefs)}, path=self.path) from None

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("rw" if self.writable else "ro")
        return f"<GrantMapping domid={self.domid} grefs={list(self.grefs)} {state}>"


def _side(seg: Any, side: Any, dest: bool, keep: list[Any], length: int) -> int:
    """Fill one union of a segment; the GNTCOPY flag it needs."""
    if isinstance(side, ForeignRef):
        check_domid(side.domid)
        check_u32(side.gref, "gref")
        check_range(side.offset, "offset", 0, PAGE_SIZE)
        if side.offset + length > PAGE_SIZE:
            raise UsageError(f"copy of {length} bytes at offset {side.offset} crosses the page")
        seg.foreign.ref = side.gref
        seg.foreign.offset = side.offset
        seg.foreign.domid = side.domid
        return abi.GNTCOPY_dest_gref if dest else abi.GNTCOPY_source_gref
    try:
        buf = _ffi.from_buffer("char[]", side, require_writable=dest)
    except (TypeError, BufferError):
        what = "a writable buffer (bytearray)" if dest else "a bytes-like buffer"
        raise UsageError(f"copy {'dest' if dest else 'source'} must be {what} or a ForeignRef") \
            from None
    if len(buf) < length:
        raise UsageError(f"local buffer of {len(buf)} bytes is shorter than the copy ({length})")
    keep.append(buf)
    seg.virt = buf
    return 0


def _refuse_foreign_writes(segments: Sequence[CopySegment]) -> None:
    if any(isinstance(s.dest, ForeignRef) for s in segments):
        refuse_if_readonly("a GRANT_COPY into another domain's page")


def _grant_copy(fd: int, segments: Sequence[CopySegment], path: str) -> list[int]:
    count = len(segments)
    if count == 0:
        return []
    segs = _ffi.new("struct gntdev_grant_copy_segment[]", count)
    keep: list[Any] = []
    _refuse_foreign_writes(segments)
    for i, s in enumerate(segments):
        length = check_range(s.length, "length", 1, PAGE_SIZE)
        flags = _side(segs[i].source, s.source, False, keep, length)
        flags |= _side(segs[i].dest, s.dest, True, keep, length)
        if not flags:
            raise UsageError("a copy segment needs a grant on at least one side")
        segs[i].len = length
        segs[i].flags = flags
    op = _ffi.new("struct ioctl_gntdev_grant_copy *")
    op.count = count
    op.segments = segs
    try:
        fcntl.ioctl(fd, abi.IOCTL_GNTDEV_GRANT_COPY, _ffi.buffer(op))
    except OSError as exc:
        raise from_oserror(exc, "IOCTL_GNTDEV_GRANT_COPY", {"segments": count},
                           path=path) from None
    return [int(segs[i].status) for i in range(count)]


def _probe(fd: int, domid: int, gref: int, path: str) -> int:
    sink = bytearray(1)
    return _grant_copy(fd, [CopySegment(ForeignRef(domid, gref), sink, 1)], path)[0]


def grant_copy(segments: Sequence[CopySegment], *, path: str = GNTDEV_PATH) -> list[int]:
    """Run one GRANT_COPY on a fresh gntdev fd; the per-segment GNTST statuses."""
    _refuse_foreign_writes(segments)
    with Gntdev(path) as dev:
        return dev.grant_copy(segments)


def probe_grant_status(domid: int, gref: int, *, path: str = GNTDEV_PATH) -> int:
    """The GNTST status of a one-byte GRANT_COPY out of ``(domid, gref)`` (0 = usable)."""
    with Gntdev(path) as dev:
        return dev.probe_grant_status(domid, gref)
