"""The kernel ABI of /dev/xen/{gntdev,gntalloc,evtchn,privcmd}, declared once, and Xen's own
numbers.

Struct layouts come from one cffi ``cdef`` (ABI mode: cffi lays the structs out
with the C rules, no compiler is needed at runtime) and the ioctl numbers are
computed from those sizes exactly like the kernel's ``_IOC`` macro.  The
``struct``-module layouts the hot paths pack with (:data:`PACKED`) are checked
against the cdef when the cdef loads.  ``tests/unit/test_abi.py`` compiles a C
program against the kernel's own uapi headers and checks every size, field
offset, packed layout and ioctl number against this module.

Plain numbers (``DOMID_SELF``, the ``GNTST_*`` codes, flags) are available without
cffi: ``ffi``, the ``IOCTL_*`` numbers, :data:`IOCTLS` and ``MAP_FAILED`` are built
on first use (module ``__getattr__``), so that a module needing only a number (the
simulated host, a probe's parameters) does not pay for cffi at import.

The same ``ffi`` also declares libc's ``mmap``/``munmap``: calling them directly
avoids the ``fstat`` and ``dup`` that :class:`mmap.mmap` adds to every mapping,
which matters because every syscall is expensive in a PV guest.
"""

from __future__ import annotations

import struct as _struct
from typing import Any

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

struct privcmd_hypercall { uint64_t op; uint64_t arg[5]; };
/* Xen's public grant_table.h (not a kernel header): GNTTABOP_query_size's argument. */
struct gnttab_query_size { uint16_t dom; uint32_t nr_frames; uint32_t max_nr_frames;
                           int16_t status; };

void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
int munmap(void *addr, size_t length);
"""

# The number of each ioctl: (direction, type, number, the struct whose size it encodes or None).
_IOCTL_SPECS: dict[str, tuple[str, int, str | None]] = {
    # gntdev ('G')
    "IOCTL_GNTDEV_MAP_GRANT_REF": ("G", 0, "struct ioctl_gntdev_map_grant_ref"),
    "IOCTL_GNTDEV_UNMAP_GRANT_REF": ("G", 1, "struct ioctl_gntdev_unmap_grant_ref"),
    "IOCTL_GNTDEV_GET_OFFSET_FOR_VADDR": ("G", 2, "struct ioctl_gntdev_get_offset_for_vaddr"),
    "IOCTL_GNTDEV_SET_UNMAP_NOTIFY": ("G", 7, "struct ioctl_gntdev_unmap_notify"),
    "IOCTL_GNTDEV_GRANT_COPY": ("G", 8, "struct ioctl_gntdev_grant_copy"),
    # gntalloc ('G' too: SET_UNMAP_NOTIFY shares gntdev's number and layout)
    "IOCTL_GNTALLOC_ALLOC_GREF": ("G", 5, "struct ioctl_gntalloc_alloc_gref"),
    "IOCTL_GNTALLOC_DEALLOC_GREF": ("G", 6, "struct ioctl_gntalloc_dealloc_gref"),
    "IOCTL_GNTALLOC_SET_UNMAP_NOTIFY": ("G", 7, "struct ioctl_gntalloc_unmap_notify"),
    # evtchn ('E')
    "IOCTL_EVTCHN_BIND_VIRQ": ("E", 0, "struct ioctl_evtchn_bind_virq"),
    "IOCTL_EVTCHN_BIND_INTERDOMAIN": ("E", 1, "struct ioctl_evtchn_bind_interdomain"),
    "IOCTL_EVTCHN_BIND_UNBOUND_PORT": ("E", 2, "struct ioctl_evtchn_bind_unbound_port"),
    "IOCTL_EVTCHN_UNBIND": ("E", 3, "struct ioctl_evtchn_unbind"),
    "IOCTL_EVTCHN_NOTIFY": ("E", 4, "struct ioctl_evtchn_notify"),
    "IOCTL_EVTCHN_RESET": ("E", 5, None),
    "IOCTL_EVTCHN_RESTRICT_DOMID": ("E", 6, "struct ioctl_evtchn_restrict_domid"),
    # privcmd ('P')
    "IOCTL_PRIVCMD_HYPERCALL": ("P", 0, "struct privcmd_hypercall"),
}

PAGE_SIZE = 4096

# Flags and constants from the same headers (and xen/include/public/{grant_table,xen}.h).
UNMAP_NOTIFY_CLEAR_BYTE = 0x1
UNMAP_NOTIFY_SEND_EVENT = 0x2
GNTALLOC_FLAG_WRITABLE = 1
GNTCOPY_source_gref = 1 << 0
GNTCOPY_dest_gref = 1 << 1
# xen/include/public/xen.h: ids from DOMID_FIRST_RESERVED up are not domains (DOMID_SELF,
# DOMID_IO, ...); the largest real domain id is DOMID_FIRST_RESERVED - 1.
DOMID_SELF = 0x7FF0
DOMID_FIRST_RESERVED = 0x7FF0
# Hypercall and sub-op numbers (xen/include/public/{xen,grant_table}.h).
HYPERVISOR_grant_table_op = 20
GNTTABOP_query_size = 6

# Grant-table status codes (GNTST_*, xen/include/public/grant_table.h); what each means and
# its likely causes are in grantscope.xen.gntstatus.
GNTST_okay = 0
GNTST_general_error = -1
GNTST_bad_domain = -2
GNTST_bad_gntref = -3
GNTST_bad_handle = -4
GNTST_bad_virt_addr = -5
GNTST_bad_dev_addr = -6
GNTST_no_device_space = -7
GNTST_permission_denied = -8
GNTST_bad_page = -9
GNTST_bad_copy_arg = -10
GNTST_address_too_big = -11
GNTST_eagain = -12
GNTST_no_space = -13
# name (without GNTST_) -> code
GNTST_CODES: dict[str, int] = {
    name.removeprefix("GNTST_"): value
    for name, value in dict(globals()).items()
    if name.startswith("GNTST_") and isinstance(value, int)
}

# mmap(2) constants (Linux, all architectures this project targets).
PROT_READ = 0x1
PROT_WRITE = 0x2
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20

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
    "struct privcmd_hypercall": ("op", "arg"),
}



# struct-module layouts of the structs the hot paths pack without cffi (one struct.pack per
# call): fields of the cdef above in order, each with its struct code; "=" means no implicit
# padding, and :func:`packed` pads the tail up to the cdef's size.
PACKED: dict[str, tuple[tuple[str, str], ...]] = {
    "struct ioctl_gntdev_grant_ref": (("domid", "I"), ("ref", "I")),
    # the header only: the refs (struct ioctl_gntdev_grant_ref each) follow it
    "struct ioctl_gntdev_map_grant_ref": (("count", "I"), ("pad", "I"), ("index", "Q")),
    "struct ioctl_gntdev_unmap_grant_ref": (("index", "Q"), ("count", "I"), ("pad", "I")),
    "struct ioctl_gntdev_unmap_notify": (("index", "Q"), ("action", "I"),
                                         ("event_channel_port", "I")),
    "struct ioctl_gntalloc_dealloc_gref": (("index", "Q"), ("count", "I")),
    "struct ioctl_gntalloc_unmap_notify": (("index", "Q"), ("action", "I"),
                                           ("event_channel_port", "I")),
    "struct ioctl_evtchn_bind_virq": (("virq", "I"),),
    "struct ioctl_evtchn_bind_interdomain": (("remote_domain", "I"), ("remote_port", "I")),
    "struct ioctl_evtchn_bind_unbound_port": (("remote_domain", "I"),),
    "struct ioctl_evtchn_unbind": (("port", "I"),),
    "struct ioctl_evtchn_notify": (("port", "I"),),
    "struct ioctl_evtchn_restrict_domid": (("domid", "H"),),
}
# Structs ending in a variable-length array: their PACKED layout is the part before it.
PACKED_HEADER_OF = {"struct ioctl_gntdev_map_grant_ref": "refs"}


def packed_size(struct: str) -> int:
    """The bytes :func:`packed` must cover: the cdef's size, or its offset of the array."""
    array = PACKED_HEADER_OF.get(struct)
    return offsetof(struct, array) if array else sizeof(struct)


def packed(struct: str) -> _struct.Struct:
    """A :class:`struct.Struct` for ``struct``, its layout checked against the cdef.

    Raises AssertionError (at the import of the binding that asks) if a field's offset or
    size, or the total, differs from what cffi lays out: a wrong layout never reaches an ioctl.
    """
    layout = PACKED[struct]
    fmt = "="
    for field, code in layout:
        where, width = _struct.calcsize(fmt), _struct.calcsize("=" + code)
        if (where, width) != (offsetof(struct, field), _field_size(struct, field)):
            raise AssertionError(f"{struct}.{field}: packed at {where} ({width} bytes), "
                                 f"the cdef says {offsetof(struct, field)} "
                                 f"({_field_size(struct, field)} bytes)")
        fmt += code
    tail = packed_size(struct) - _struct.calcsize(fmt)
    if tail < 0:
        raise AssertionError(f"{struct}: packed layout longer than the cdef's")
    return _struct.Struct(fmt + (f"{tail}x" if tail else ""))


def _field_size(struct: str, dotted_field: str) -> int:
    ctype = _ffi().typeof(struct)
    for part in dotted_field.split("."):
        ctype = dict(ctype.fields)[part].type
    return int(_ffi().sizeof(ctype))


def offsetof(struct: str, dotted_field: str) -> int:
    """Byte offset of a (possibly nested, dotted) field, e.g. ``source.foreign.ref``."""
    return int(_ffi().offsetof(struct, *dotted_field.split(".")))


def sizeof(struct: str) -> int:
    """Size in bytes of ``struct``."""
    return int(_ffi().sizeof(struct))


_cffi: Any = None
_libc: Any = None


def _ffi() -> Any:
    """The cdef's FFI, built on first use, with the ioctl numbers derived from it."""
    global _cffi
    if _cffi is None:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(CDEF)
        _cffi = ffi
        ioctls = {name: ioc(_IOC_NONE, kind, nr, int(ffi.sizeof(struct)) if struct else 0)
                  for name, (kind, nr, struct) in _IOCTL_SPECS.items()}
        # From now on these are plain module attributes (no __getattr__ on the hot paths).
        globals().update(ffi=ffi, IOCTLS=ioctls, **ioctls,
                         MAP_FAILED=2**64 - 1 if ffi.sizeof("void *") == 8 else 2**32 - 1)
    return _cffi


def __getattr__(name: str) -> Any:
    """``ffi``, ``IOCTLS``, ``IOCTL_*`` and ``MAP_FAILED``: built with the cdef on first use."""
    if name in ("ffi", "IOCTLS", "MAP_FAILED") or name in _IOCTL_SPECS:
        _ffi()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def libc() -> Any:
    """libc through cffi (``mmap``/``munmap``), opened on first use."""
    global _libc
    if _libc is None:
        _libc = _ffi().dlopen(None)
    return _libc


_IOC_NONE = 0
_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = 8
_IOC_SIZESHIFT = 16
_IOC_DIRSHIFT = 30


def ioc(direction: int, kind: str, nr: int, size: int) -> int:
    """The kernel's ``_IOC`` macro (x86 and arm64: dir in bits 30-31, size 16-29, type 8-15,
    nr 0-7)."""
    return (
        (direction << _IOC_DIRSHIFT)
        | (size << _IOC_SIZESHIFT)
        | (ord(kind) << _IOC_TYPESHIFT)
        | (nr << _IOC_NRSHIFT)
    )
