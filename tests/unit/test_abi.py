"""grantscope.xen.abi against the kernel's own uapi headers, compiled with gcc."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from grantscope.xen import abi

HEADERS = [Path("/usr/include/xen") / n for n in ("gntdev.h", "gntalloc.h", "evtchn.h")]

PRELUDE = """
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/ioctl.h>
#include <linux/types.h>
/* The uapi headers use these Xen types without defining them (libxen defines them). */
typedef uint32_t grant_ref_t;
typedef uint16_t domid_t;
#include <xen/gntdev.h>
#include <xen/gntalloc.h>
#include <xen/evtchn.h>
int main(void) {
"""


def _c_program() -> str:
    lines = [PRELUDE]
    for struct, fields in abi.STRUCT_FIELDS.items():
        lines.append(f'printf("size {struct} %zu\\n", sizeof({struct}));')
        for field in fields:
            lines.append(
                f'printf("offset {struct} {field} %zu\\n", offsetof({struct}, {field}));'
            )
            # Field width too, so a u16 declared as u32 is caught even where offsets agree.
            lines.append(
                f'printf("fsize {struct} {field} %zu\\n", sizeof((({struct} *)0)->{field}));'
            )
    for name in abi.IOCTLS:
        lines.append(f'printf("ioctl {name} %lu\\n", (unsigned long)({name}));')
    for const in ("UNMAP_NOTIFY_CLEAR_BYTE", "UNMAP_NOTIFY_SEND_EVENT", "GNTALLOC_FLAG_WRITABLE"):
        lines.append(f'printf("const {const} %d\\n", (int)({const}));')
    lines.append("return 0; }")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def kernel_values(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    missing = [str(h) for h in HEADERS if not h.exists()]
    if shutil.which("gcc") is None or missing:
        pytest.skip(f"needs gcc and the kernel uapi headers (missing: {missing or 'gcc'})")
    tmp = tmp_path_factory.mktemp("abi")
    src = tmp / "abi.c"
    src.write_text(_c_program())
    exe = tmp / "abi"
    subprocess.run(["gcc", "-Wall", "-Werror", "-o", str(exe), str(src)], check=True,
                   capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    values: dict[str, int] = {}
    for line in out.splitlines():
        key, _, value = line.rpartition(" ")
        values[key] = int(value)
    return values


def _field_size(struct: str, dotted: str) -> int:
    ctype = abi.ffi.typeof(struct)
    for part in dotted.split("."):
        ctype = dict(ctype.fields)[part].type
    return int(abi.ffi.sizeof(ctype))


def test_every_struct_size_matches(kernel_values: dict[str, int]) -> None:
    for struct in abi.STRUCT_FIELDS:
        assert abi.sizeof(struct) == kernel_values[f"size {struct}"], struct


def test_every_field_offset_and_width_matches(kernel_values: dict[str, int]) -> None:
    checked = 0
    for struct, fields in abi.STRUCT_FIELDS.items():
        for field in fields:
            assert abi.offsetof(struct, field) == kernel_values[f"offset {struct} {field}"], (
                struct, field)
            assert _field_size(struct, field) == kernel_values[f"fsize {struct} {field}"], (
                struct, field)
            checked += 1
    assert checked >= 40


def test_every_ioctl_number_matches(kernel_values: dict[str, int]) -> None:
    expected = {
        "IOCTL_GNTDEV_MAP_GRANT_REF", "IOCTL_GNTDEV_UNMAP_GRANT_REF",
        "IOCTL_GNTDEV_GET_OFFSET_FOR_VADDR", "IOCTL_GNTDEV_SET_UNMAP_NOTIFY",
        "IOCTL_GNTDEV_GRANT_COPY", "IOCTL_GNTALLOC_ALLOC_GREF", "IOCTL_GNTALLOC_DEALLOC_GREF",
        "IOCTL_GNTALLOC_SET_UNMAP_NOTIFY", "IOCTL_EVTCHN_BIND_VIRQ",
        "IOCTL_EVTCHN_BIND_INTERDOMAIN", "IOCTL_EVTCHN_BIND_UNBOUND_PORT", "IOCTL_EVTCHN_UNBIND",
        "IOCTL_EVTCHN_NOTIFY", "IOCTL_EVTCHN_RESET", "IOCTL_EVTCHN_RESTRICT_DOMID",
    }
    assert set(abi.IOCTLS) == expected
    for name, value in abi.IOCTLS.items():
        assert value == kernel_values[f"ioctl {name}"], name


def test_flag_constants_match(kernel_values: dict[str, int]) -> None:
    assert kernel_values["const UNMAP_NOTIFY_CLEAR_BYTE"] == abi.UNMAP_NOTIFY_CLEAR_BYTE
    assert kernel_values["const UNMAP_NOTIFY_SEND_EVENT"] == abi.UNMAP_NOTIFY_SEND_EVENT
    assert kernel_values["const GNTALLOC_FLAG_WRITABLE"] == abi.GNTALLOC_FLAG_WRITABLE


def test_known_values_from_the_reference() -> None:
    # Independent of gcc: the numbers xen-facts.md §2.1-2.3 computed on x86-64.
    assert abi.IOCTL_GNTDEV_MAP_GRANT_REF == 0x00184700
    assert abi.IOCTL_GNTDEV_GRANT_COPY == 0x00104708
    assert abi.IOCTL_GNTALLOC_ALLOC_GREF == 0x00184705
    assert abi.IOCTL_EVTCHN_BIND_INTERDOMAIN == 0x00084501
    assert abi.IOCTL_EVTCHN_RESET == 0x00004505
    assert abi.sizeof("struct gntdev_grant_copy_segment") == 24


def test_struct_packing_used_on_hot_paths_matches_the_cffi_layout() -> None:
    # gntdev.py packs MAP_GRANT_REF with struct ("=IIQ" + refs) for speed.
    import struct

    map_struct = "struct ioctl_gntdev_map_grant_ref"
    assert struct.calcsize("=IIQ2I") == abi.sizeof(map_struct)
    assert abi.offsetof(map_struct, "index") == 8
    assert abi.offsetof(map_struct, "refs") == 16
    assert struct.calcsize("=QII") == abi.sizeof("struct ioctl_gntdev_unmap_grant_ref")
    assert struct.calcsize("=QI4x") == abi.sizeof("struct ioctl_gntalloc_dealloc_gref")
