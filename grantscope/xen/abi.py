"""The kernel ABI of /dev/xen/{gntdev,gntalloc,evtchn}, declared once.

Struct layouts come from one cffi ``cdef`` (ABI mode: cffi lays the structs out
with the C rules at import time, no compiler is needed at runtime) and the ioctl
numbers are computed from those sizes exactly like the kernel's ``_IOC`` macro.
``tests/unit/test_abi.py`` compiles a C program against the kernel's own uapi
headers and checks every size, field offset and ioctl number against this module.

The same ``ffi`` also declares libc's ``mmap``/``munmap``: calling them directly
avoids the ``fstat`` and ``dup`` that :class:`mmap.mmap` adds to every mapping,
which matters because every syscall is expensive in a PV guest.
"""

from __future__ import annotations

from typing import Any

import cffi

# Field names and order are the kernel's (include/uapi/xen/{gntdev,gntalloc,evtchn}.h);
# __u32 -> uint32_t, unsigned int -> uint32_t (LP64 and ILP32 alike), grant_ref_t -> uint32_t,
# domid_t -> uint16_t.  Variable-length arrays keep their 1-element declaration because
# the ioctl number encodes the size of the struct *with* that one element.
CDEF = """
struct ioctl_gntdev_grant_ref { uint32_t domid; uint32_t ref; };
struct ioctl_gntdev_map_grant_ref {
    uint32_t count; uint32_t pad; uint64_t index;
    struct ioctl_gntdev_grant_ref refs[1];
};
struct ioctl_gntdev_unmap_grant_ref { uint64_t index; uint32_t count; uint32_t pad; };
struct ioctl_gntdev_get_offset_for_vaddr {
    uint64_t vaddr; uint64_t offset; uint32_t count; uint32_t pad;
};
struct ioctl_gntdev_unmap_notify { uint64_t index; uint32_t action; uint32_t event_channel_port; };
struct gntdev_grant_copy_foreign { uint32_t ref; uint16_t offset; uint16_t domid; };
union gntdev_grant_copy_ptr { void *virt; struct gntdev_grant_copy_foreign foreign; };
struct gntdev_grant_copy_segment {
    union gntdev_grant_copy_ptr source;
    union gntdev_grant_copy_ptr dest;
    uint16_t len; uint16_t flags; int16_t status;
};
struct ioctl_gntdev_grant_copy { unsigned int count; struct gntdev_grant_copy_segment *segments; };

struct ioctl_gntalloc_alloc_gref {
    uint16_t domid; uint16_t flags; uint32_t count; uint64_t index; uint32_t gref_ids[1];
};
struct ioctl_gntalloc_dealloc_gref { uint64_t index; uint32_t count; };
struct ioctl_gntalloc_unmap_notify {
    uint64_t index; uint32_t action; uint32_t event_channel_port;
};

struct ioctl_evtchn_bind_virq { unsigned int virq; };
struct ioctl_evtchn_bind_interdomain { unsigned int remote_domain, remote_port; };
struct ioctl_evtchn_bind_unbound_port { unsigned int remote_domain; };
struct ioctl_evtchn_unbind { unsigned int port; };
struct ioctl_evtchn_notify { unsigned int port; };
struct ioctl_evtchn_restrict_domid { uint16_t domid; };

void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
int munmap(void *addr, size_t length);
"""

ffi = cffi.FFI()
ffi.cdef(CDEF)

_libc: Any = None


def libc() -> Any:
    """libc through cffi (``mmap``/``munmap``), opened on first use."""
    global _libc
    if _libc is None:
        _libc = ffi.dlopen(None)
    return _libc


PAGE_SIZE = 4096

# _IOC(dir, type, nr, size) on x86 and arm64: dir in bits 30-31, size 16-29, type 8-15, nr 0-7.
_IOC_NONE = 0
_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = 8
_IOC_SIZESHIFT = 16
_IOC_DIRSHIFT = 30


def ioc(direction: int, kind: str, nr: int, size: int) -> int:
    """The kernel's ``_IOC`` macro."""
    return (
        (direction << _IOC_DIRSHIFT)
        | (size << _IOC_SIZESHIFT)
        | (ord(kind) << _IOC_TYPESHIFT)
        | (nr << _IOC_NRSHIFT)
    )


def _io_struct(kind: str, nr: int, struct: str) -> int:
    return ioc(_IOC_NONE, kind, nr, ffi.sizeof(struct))


# gntdev ('G')
IOCTL_GNTDEV_MAP_GRANT_REF = _io_struct("G", 0, "struct ioctl_gntdev_map_grant_ref")
IOCTL_GNTDEV_UNMAP_GRANT_REF = _io_struct("G", 1, "struct ioctl_gntdev_unmap_grant_ref")
IOCTL_GNTDEV_GET_OFFSET_FOR_VADDR = _io_struct("G", 2, "struct ioctl_gntdev_get_offset_for_vaddr")
IOCTL_GNTDEV_SET_UNMAP_NOTIFY = _io_struct("G", 7, "struct ioctl_gntdev_unmap_notify")
IOCTL_GNTDEV_GRANT_COPY = _io_struct("G", 8, "struct ioctl_gntdev_grant_copy")

# gntalloc ('G' too: SET_UNMAP_NOTIFY shares gntdev's number and layout)
IOCTL_GNTALLOC_ALLOC_GREF = _io_struct("G", 5, "struct ioctl_gntalloc_alloc_gref")
IOCTL_GNTALLOC_DEALLOC_GREF = _io_struct("G", 6, "struct ioctl_gntalloc_dealloc_gref")
IOCTL_GNTALLOC_SET_UNMAP_NOTIFY = _io_struct("G", 7, "struct ioctl_gntalloc_unmap_notify")

# evtchn ('E')
IOCTL_EVTCHN_BIND_VIRQ = _io_struct("E", 0, "struct ioctl_evtchn_bind_virq")
IOCTL_EVTCHN_BIND_INTERDOMAIN = _io_struct("E", 1, "struct ioctl_evtchn_bind_interdomain")
IOCTL_EVTCHN_BIND_UNBOUND_PORT = _io_struct("E", 2, "struct ioctl_evtchn_bind_unbound_port")
IOCTL_EVTCHN_UNBIND = _io_struct("E", 3, "struct ioctl_evtchn_unbind")
IOCTL_EVTCHN_NOTIFY = _io_struct("E", 4, "struct ioctl_evtchn_notify")
IOCTL_EVTCHN_RESET = ioc(_IOC_NONE, "E", 5, 0)
IOCTL_EVTCHN_RESTRICT_DOMID = _io_struct("E", 6, "struct ioctl_evtchn_restrict_domid")

# Flags and constants from the same headers (and xen/include/public/grant_table.h).
UNMAP_NOTIFY_CLEAR_BYTE = 0x1
UNMAP_NOTIFY_SEND_EVENT = 0x2
GNTALLOC_FLAG_WRITABLE = 1
GNTCOPY_source_gref = 1 << 0
GNTCOPY_dest_gref = 1 << 1
DOMID_SELF = 0x7FF0
DOMID_FIRST_RESERVED = 0x7FF0

# Every ioctl by name, for error messages and the ABI test.
IOCTLS: dict[str, int] = {
    name: value
    for name, value in globals().items()
    if name.startswith("IOCTL_") and isinstance(value, int)
}

# The structs the ABI test checks, with their fields (nested fields as dotted paths).
STRUCT_FIELDS: dict[str, tuple[str, ...]] = {
    "struct ioctl_gntdev_grant_ref": ("domid", "ref"),
    "struct ioctl_gntdev_map_grant_ref": ("count", "pad", "index", "refs"),
    "struct ioctl_gntdev_unmap_grant_ref": ("index", "count", "pad"),
    "struct ioctl_gntdev_get_offset_for_vaddr": ("vaddr", "offset", "count", "pad"),
    "struct ioctl_gntdev_unmap_notify": ("index", "action", "event_channel_port"),
    "struct gntdev_grant_copy_segment": (
        "source.virt",
        "source.foreign.ref",
        "source.foreign.offset",
        "source.foreign.domid",
        "dest.virt",
        "dest.foreign.ref",
        "dest.foreign.offset",
        "dest.foreign.domid",
        "len",
        "flags",
        "status",
    ),
    "struct ioctl_gntdev_grant_copy": ("count", "segments"),
    "struct ioctl_gntalloc_alloc_gref": ("domid", "flags", "count", "index", "gref_ids"),
    "struct ioctl_gntalloc_dealloc_gref": ("index", "count"),
    "struct ioctl_gntalloc_unmap_notify": ("index", "action", "event_channel_port"),
    "struct ioctl_evtchn_bind_virq": ("virq",),
    "struct ioctl_evtchn_bind_interdomain": ("remote_domain", "remote_port"),
    "struct ioctl_evtchn_bind_unbound_port": ("remote_domain",),
    "struct ioctl_evtchn_unbind": ("port",),
    "struct ioctl_evtchn_notify": ("port",),
    "struct ioctl_evtchn_restrict_domid": ("domid",),
}


def offsetof(struct: str, dotted_field: str) -> int:
    """Byte offset of a (possibly nested, dotted) field, e.g. ``source.foreign.ref``."""
    return int(ffi.offsetof(struct, *dotted_field.split(".")))


def sizeof(struct: str) -> int:
    """Size in bytes of ``struct``."""
    return int(ffi.sizeof(struct))


# mmap(2) constants (Linux, all architectures this project targets).
PROT_READ = 0x1
PROT_WRITE = 0x2
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_FAILED = 2**64 - 1 if ffi.sizeof("void *") == 8 else 2**32 - 1
