"""grantscope.xen.abi against the kernel's own uapi headers, compiled with gcc."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from struct import calcsize

import pytest

from grantscope.xen import abi

HEADERS = [Path("/usr/include/xen") / n
           for n in ("gntdev.h", "gntalloc.h", "evtchn.h", "privcmd.h")]

PRELUDE = """
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/ioctl.h>
#include <linux/types.h>
/* The uapi headers use these Xen types without defining them (libxen defines them). */
typedef uint32_t grant_ref_t;
typedef uint16_t domid_t;
typedef unsigned long xen_pfn_t;
#include <xen/gntdev.h>
#include <xen/gntalloc.h>
#include <xen/evtchn.h>
/* privcmd.h includes the kernel-internal <xen/interface/xen.h>: an empty stand-in is on -I. */
#include <xen/privcmd.h>
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
    (tmp / "xen" / "interface").mkdir(parents=True)
    (tmp / "xen" / "interface" / "xen.h").write_text("")
    subprocess.run(["gcc", "-Wall", "-Werror", "-I", str(tmp), "-o", str(exe), str(src)],
                   check=True, capture_output=True, text=True)
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
        "IOCTL_PRIVCMD_HYPERCALL",
    }
    assert set(abi.IOCTLS) == expected
    for name, value in abi.IOCTLS.items():
        assert value == kernel_values[f"ioctl {name}"], name


def test_flag_constants_match(kernel_values: dict[str, int]) -> None:
    assert kernel_values["const UNMAP_NOTIFY_CLEAR_BYTE"] == abi.UNMAP_NOTIFY_CLEAR_BYTE
    assert kernel_values["const UNMAP_NOTIFY_SEND_EVENT"] == abi.UNMAP_NOTIFY_SEND_EVENT
    assert kernel_values["const GNTALLOC_FLAG_WRITABLE"] == abi.GNTALLOC_FLAG_WRITABLE


def test_query_size_layout_is_xens() -> None:
    """``struct gnttab_query_size`` is Xen's (public/grant_table.h), not in the kernel's
    uapi headers: its C layout written out here (domid_t, 2 bytes of padding, two uint32_t,
    an int16_t status, 2 bytes of tail padding)."""
    struct = "struct gnttab_query_size"
    assert [(f, abi.offsetof(struct, f)) for f in ("dom", "nr_frames", "max_nr_frames",
                                                    "status")] == [
        ("dom", 0), ("nr_frames", 4), ("max_nr_frames", 8), ("status", 12)]
    assert abi.sizeof(struct) == 16
    assert (abi.HYPERVISOR_grant_table_op, abi.GNTTABOP_query_size) == (20, 6)


def test_known_values_from_the_reference() -> None:
    # Independent of gcc: the numbers xen-facts.md §2.1-2.3 computed on x86-64.
    assert abi.IOCTL_GNTDEV_MAP_GRANT_REF == 0x00184700
    assert abi.IOCTL_GNTDEV_GRANT_COPY == 0x00104708
    assert abi.IOCTL_GNTALLOC_ALLOC_GREF == 0x00184705
    assert abi.IOCTL_EVTCHN_BIND_INTERDOMAIN == 0x00084501
    assert abi.IOCTL_EVTCHN_RESET == 0x00004505
    assert abi.sizeof("struct gntdev_grant_copy_segment") == 24


def test_reserved_domids_are_xens() -> None:
    # xen/include/public/xen.h (not in the kernel's uapi headers, so not compiled above):
    # #define DOMID_FIRST_RESERVED xen_mk_uint(0x7FF0), #define DOMID_SELF xen_mk_uint(0x7FF0).
    assert abi.DOMID_FIRST_RESERVED == abi.DOMID_SELF == 0x7FF0
    from grantscope.cli.grants import MAX_DOMID

    assert MAX_DOMID == 0x7FEF  # what offer/notify/pingpong accept as a peer


def _packed_offsets(struct_name: str) -> list[tuple[str, int, int]]:
    """(field, offset, width) of each field of abi.PACKED's layout, by the struct module."""
    out, fmt = [], "="
    for field, code in abi.PACKED[struct_name]:
        out.append((field, calcsize(fmt), calcsize("=" + code)))
        fmt += code
    return out


def test_packed_layouts_match_the_kernel(kernel_values: dict[str, int]) -> None:
    """The struct-module layouts the hot paths pack with, field by field, against the headers."""
    for name in abi.PACKED:
        for field, offset, width in _packed_offsets(name):
            assert offset == kernel_values[f"offset {name} {field}"], (name, field)
            assert width == kernel_values[f"fsize {name} {field}"], (name, field)
        array = abi.PACKED_HEADER_OF.get(name)
        size = (kernel_values[f"offset {name} {array}"] if array
                else kernel_values[f"size {name}"])
        assert abi.packed(name).size == size, name


def test_packed_layouts_cover_every_field_of_their_struct() -> None:
    for name, layout in abi.PACKED.items():
        fields = [f for f in abi.STRUCT_FIELDS[name] if f != abi.PACKED_HEADER_OF.get(name)]
        assert [field for field, _ in layout] == fields, name


def test_the_bindings_pack_with_the_checked_layouts() -> None:
    from grantscope.xen import evtchn, gntalloc, gntdev

    assert gntdev._UNMAP.format == "=QII"
    assert gntdev._MAP_HEADER.format == "=IIQ" and gntdev._REF_CODES == "II"
    assert gntdev.GrantMapping._NOTIFY_STRUCT.format == "=QII"
    assert gntalloc.GrantOffer._NOTIFY_STRUCT.format == "=QII"
    assert gntalloc._DEALLOC.format == "=QI4x" and gntalloc._DEALLOC.size == 16
    assert evtchn._BIND_INTERDOMAIN.format == "=II" and evtchn._RESTRICT.format == "=H"


def test_a_wrong_packed_layout_fails_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "struct ioctl_gntdev_unmap_grant_ref"
    monkeypatch.setitem(abi.PACKED, name, (("index", "I"), ("count", "I"), ("pad", "I")))
    with pytest.raises(AssertionError, match=r"\.index: packed at 0 \(4 bytes\), the cdef "
                                             r"says 0 \(8 bytes\)"):
        abi.packed(name)
    monkeypatch.setitem(abi.PACKED, name, (("index", "Q"), ("count", "I"), ("pad", "Q")))
    with pytest.raises(AssertionError, match="pad"):
        abi.packed(name)


def test_gntst_codes_have_one_home() -> None:
    from grantscope.xen import gntstatus

    assert abi.GNTST_CODES["okay"] == 0 and abi.GNTST_CODES["no_space"] == -13
    assert sorted(abi.GNTST_CODES.values()) == list(range(-13, 1))
    assert {code: name for code, (name, _) in gntstatus.GNTST.items()} == {
        code: name for name, code in abi.GNTST_CODES.items()}
    assert set(gntstatus.CAUSES) <= set(gntstatus.GNTST)


# Modules that still declare their own copy, and who removes it (the lead empties this).
KNOWN_COPIES: dict[str, str] = {}  # file -> who removes its copy (none left)


def test_domid_self_and_gntst_are_declared_only_in_abi() -> None:
    import ast

    root = Path(__file__).resolve().parents[2]
    copies = []
    for path in sorted([*root.joinpath("grantscope").rglob("*.py"),
                        *root.joinpath("probes").glob("*.py")]):
        rel = path.relative_to(root).as_posix()
        if rel == "grantscope/xen/abi.py" or rel.startswith("grantscope/probes/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Name) and (
                        target.id == "DOMID_SELF" or target.id.upper().startswith("GNTST_")):
                    copies.append(f"{rel}:{node.lineno} {target.id}")
    unexpected = [c for c in copies if c.split(":")[0] not in KNOWN_COPIES]
    assert unexpected == []
    assert {c.split(":")[0] for c in copies} == set(KNOWN_COPIES)


def test_plain_numbers_do_not_load_cffi() -> None:
    """DOMID_SELF and the GNTST codes come without cffi; the ioctl numbers bring it."""
    code = ("import sys\nfrom grantscope.xen import abi, gntstatus\n"
            "print(abi.DOMID_SELF, 'cffi' in sys.modules)\n"
            "print(abi.IOCTL_EVTCHN_NOTIFY, 'cffi' in sys.modules)\n"
            "from grantscope.xen.abi import IOCTL_EVTCHN_RESET\nprint(IOCTL_EVTCHN_RESET)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["32752", "False", str(0x00044504), "True", str(0x00004505)]
    with pytest.raises(AttributeError, match="no attribute 'IOCTL_NOPE'"):
        abi.IOCTL_NOPE  # noqa: B018
