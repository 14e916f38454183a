"""XenError explanations, the GNTST table, and the device objects' behaviour without Xen."""

from __future__ import annotations

import errno
import json
import mmap
import os
from pathlib import Path

import pytest

from grantscope.errors import NoXenError, UsageError
from grantscope.xen import _host, gntstatus
from grantscope.xen._pages import MappedPages
from grantscope.xen.errors import (
    XenError,
    XenUnavailableError,
    from_oserror,
    map_failed_error,
    require_xen,
)
from grantscope.xen.evtchn import EventChannel
from grantscope.xen.gntalloc import GrantOffer
from grantscope.xen.gntdev import CopySegment, ForeignRef, Gntdev, GrantMapping, grant_copy

# The names in xen/include/public/grant_table.h, in order 0..-13.
XEN_NAMES = [
    "okay", "general_error", "bad_domain", "bad_gntref", "bad_handle", "bad_virt_addr",
    "bad_dev_addr", "no_device_space", "permission_denied", "bad_page", "bad_copy_arg",
    "address_too_big", "eagain", "no_space",
]


def _fake_root(tmp_path: Path, *, xen: bool, modules: tuple[str, ...] = (),
               params: dict[tuple[str, str], str] | None = None) -> str:
    if xen:
        (tmp_path / "sys/hypervisor").mkdir(parents=True)
        (tmp_path / "sys/hypervisor/type").write_text("xen\n")
    for m in modules:
        (tmp_path / "sys/module" / m / "parameters").mkdir(parents=True)
    for (m, p), v in (params or {}).items():
        d = tmp_path / "sys/module" / m / "parameters"
        d.mkdir(parents=True, exist_ok=True)
        (d / p).write_text(v + "\n")
    return str(tmp_path)


# -- GNTST ---------------------------------------------------------------------------
def test_every_gntst_code_has_its_xen_name_and_a_meaning() -> None:
    assert sorted(gntstatus.GNTST) == list(range(-13, 1))
    for i, name in enumerate(XEN_NAMES):
        code = -i
        assert gntstatus.status_name(code) == name
        meaning = gntstatus.status_meaning(code)
        assert len(meaning) > 10
        spaced = name.replace("_", " ")
        assert gntstatus.describe(code) == f"{code} {spaced}: {meaning}"
        if code != 0:
            assert gntstatus.causes(code), f"no causes for {code}"


def test_general_error_wording_and_causes() -> None:
    text = gntstatus.describe(-1)
    assert text.startswith("-1 general error: the grant is not for this domain")
    assert "never granted / already ended" in text
    causes = " ".join(gntstatus.causes(-1))
    assert "another domain id" in causes and "read-only" in causes


def test_unknown_status_is_named_unknown() -> None:
    assert gntstatus.status_name(-99) == "unknown"
    assert "-99" in gntstatus.status_meaning(-99)


# -- XenError shape ------------------------------------------------------------------
def test_to_json_has_every_agreed_key() -> None:
    err = XenError("m", "s", errno=errno.EINVAL, call="mmap", arguments={"domid": 3},
                   causes=["c1"], gnttab_status=-3)
    data = err.to_json()
    assert set(data) == {"message", "errno", "errno_name", "call", "arguments", "explanation",
                         "causes", "gnttab_status", "gnttab_status_name"}
    assert data["errno_name"] == "EINVAL"
    assert data["gnttab_status_name"] == "bad_gntref"
    assert data["causes"] == ["c1"]
    assert "c1" in data["explanation"]
    json.dumps(data)
    assert err.exit_code == 1


# -- open failures -------------------------------------------------------------------
def test_missing_node_on_non_xen_is_no_xen_exit_2(tmp_path: Path) -> None:
    root = _fake_root(tmp_path, xen=False)
    err = from_oserror(FileNotFoundError(errno.ENOENT, "x"), "open",
                       {"path": "/dev/xen/gntdev"}, root=root)
    assert isinstance(err, XenUnavailableError) and isinstance(err, NoXenError)
    assert err.exit_code == 2
    assert "not running on Xen" in err.message


@pytest.mark.parametrize("node,module", [("gntdev", "xen-gntdev"),
                                         ("gntalloc", "xen-gntalloc"),
                                         ("evtchn", "xen-evtchn")])
def test_missing_node_on_xen_names_the_module(tmp_path: Path, node: str, module: str) -> None:
    root = _fake_root(tmp_path, xen=True)
    err = from_oserror(FileNotFoundError(errno.ENOENT, "x"), "open",
                       {"path": f"/dev/xen/{node}"}, root=root)
    assert err.exit_code == 2
    assert f"modprobe {module}" in err.explanation
    assert f"the {module} kernel module is not loaded" in err.causes[0]


def test_missing_node_with_module_loaded_blames_the_node(tmp_path: Path) -> None:
    root = _fake_root(tmp_path, xen=True, modules=("xen_evtchn",))
    err = from_oserror(FileNotFoundError(errno.ENOENT, "x"), "open",
                       {"path": "/dev/xen/evtchn"}, root=root)
    assert "is loaded but the node" in err.causes[0]


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM])
def test_permission_denied_on_open(code: int) -> None:
    err = from_oserror(PermissionError(code, "x"), "open", {"path": "/dev/xen/gntdev"})
    assert err.errno == code and err.exit_code == 1
    assert "run as root" in err.explanation
    if os.geteuid() != 0:
        assert any("not running as root" in c for c in err.causes)


def test_restricted_evtchn_fd_is_explained() -> None:
    err = from_oserror(PermissionError(errno.EACCES, "x"), "IOCTL_EVTCHN_BIND_INTERDOMAIN",
                       {"remote_domid": 3, "remote_port": 5}, path="/dev/xen/evtchn")
    assert any("RESTRICT_DOMID" in c for c in err.causes)


# -- ioctl failures ------------------------------------------------------------------
def test_gntalloc_enospc_names_the_limit(tmp_path: Path) -> None:
    root = _fake_root(tmp_path, xen=True, params={("xen_gntalloc", "limit"): "1024"})
    err = from_oserror(OSError(errno.ENOSPC, "x"), "IOCTL_GNTALLOC_ALLOC_GREF",
                       {"domid": 1, "pages": 4}, path="/dev/xen/gntalloc", root=root)
    assert "currently 1024" in err.causes[0]
    assert "/sys/module/xen_gntalloc/parameters/limit" in err.explanation
    assert err.to_json()["errno_name"] == "ENOSPC"


@pytest.mark.parametrize("call", ["IOCTL_EVTCHN_NOTIFY", "IOCTL_EVTCHN_UNBIND"])
def test_enotconn_port_not_bound_here(call: str) -> None:
    err = from_oserror(OSError(errno.ENOTCONN, "x"), call, {"port": 42},
                       path="/dev/xen/evtchn")
    assert "port 42 is not bound through this event-channel fd" in err.causes[0]
    assert err.message.startswith(f"{call}(port=42")


def test_bind_interdomain_einval_and_esrch() -> None:
    inval = from_oserror(OSError(errno.EINVAL, "x"), "IOCTL_EVTCHN_BIND_INTERDOMAIN",
                         {"remote_domid": 7, "remote_port": 9})
    assert "remote port 9 of domain 7" in inval.causes[0]
    srch = from_oserror(OSError(errno.ESRCH, "x"), "IOCTL_EVTCHN_BIND_INTERDOMAIN",
                        {"remote_domid": 7, "remote_port": 9})
    assert "domain 7 does not exist" in srch.causes[0]


@pytest.mark.parametrize("call,needle", [
    ("IOCTL_GNTDEV_SET_UNMAP_NOTIFY", "not bound in this kernel"),
    ("IOCTL_GNTDEV_GRANT_COPY", "local to local"),
    ("IOCTL_GNTDEV_MAP_GRANT_REF", "per-request limit"),
    ("IOCTL_EVTCHN_RESTRICT_DOMID", "reserved domids"),
])
def test_einval_per_call(call: str, needle: str) -> None:
    err = from_oserror(OSError(errno.EINVAL, "x"), call, {"port": 3})
    assert any(needle in c for c in err.causes), err.causes


def test_unknown_errno_still_gives_a_message() -> None:
    err = from_oserror(OSError(errno.EIO, "x"), "IOCTL_GNTDEV_MAP_GRANT_REF", {"domid": 1})
    assert "EIO" in err.message and err.explanation


def test_evtchn_ring_overflow() -> None:
    err = from_oserror(OSError(errno.EFBIG, "x"), "read", {"fd": 3})
    assert "IOCTL_EVTCHN_RESET" in err.explanation


# -- map failure diagnosis -------------------------------------------------------------
@pytest.mark.parametrize("status", list(range(-13, 0)))
def test_map_failure_reports_every_status_by_name(status: int) -> None:
    err = map_failed_error(OSError(errno.EINVAL, "x"), 0, [8, 9], writable=True,
                           failing_gref=9, status=status)
    data = err.to_json()
    assert data["gnttab_status"] == status
    assert data["gnttab_status_name"] == gntstatus.status_name(status)
    assert data["call"] == "mmap" and data["errno"] == errno.EINVAL
    assert gntstatus.describe(status) in err.explanation
    assert err.causes == list(gntstatus.causes(status))


def test_map_failure_with_domid_self_names_it() -> None:
    err = map_failed_error(OSError(errno.EINVAL, "x"), 0x7FF0, [8], writable=True,
                           failing_gref=None, status=0)
    assert "DOMID_SELF" in err.causes[0] and "real" in err.causes[0]
    assert err.gnttab_status == 0  # what the copy said, not invented
    assert "-2 bad domain" in err.explanation


def test_map_failure_with_copy_ok_points_at_write_access() -> None:
    err = map_failed_error(OSError(errno.EINVAL, "x"), 0, [8], writable=True,
                           failing_gref=None, status=0)
    assert "read-only" in err.causes[0]


def test_map_failure_with_copy_ok_names_a_full_maptrack() -> None:
    # What the lab showed: a PV guest with max_maptrack_frames=2 mapping 160 pages got
    # EINVAL from mmap while every GRANT_COPY said okay (GRANT_COPY takes no maptrack entry).
    refs = list(range(208, 368))
    err = map_failed_error(OSError(errno.EINVAL, "x"), 0, refs, writable=False,
                           failing_gref=None, status=0)
    (maptrack,) = [c for c in err.causes if "maptrack" in c]
    assert "-13 no_space" in maptrack and "160 page(s) need 320" in maptrack
    assert err.causes[0] == maptrack  # read-only: write access is not a suspect
    assert "max_maptrack_frames" in (err.hint or "")
    # The headline names a few refs and the count; --json keeps them all.
    assert "grefs=[208, 209, 210, 211, 212, ... 367] (160 items)" in err.message
    assert err.to_json()["arguments"]["grefs"] == refs


# -- no Xen here: objects fail cleanly -------------------------------------------------
def test_require_xen_on_this_machine(tmp_path: Path) -> None:
    with pytest.raises(XenUnavailableError):
        require_xen(_fake_root(tmp_path, xen=False))
    require_xen(_fake_root(tmp_path / "x", xen=True))


def test_objects_on_a_missing_node_raise_xen_errors(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope" / "gntdev")
    for make in (lambda: GrantMapping(0, [8], path=missing),
                 lambda: GrantOffer(0, path=missing),
                 lambda: EventChannel(path=missing),
                 lambda: grant_copy([], path=missing),
                 lambda: Gntdev(missing)):
        with pytest.raises(XenError) as info:
            make()
        assert info.value.call == "open" and info.value.errno == errno.ENOENT
        assert info.value.exit_code == 2  # not Xen, or module missing: both exit 2


def test_argument_checks_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        GrantMapping(70000, [8], path=str(tmp_path / "x"))
    with pytest.raises(UsageError):
        GrantMapping(0, [], path=str(tmp_path / "x"))
    with pytest.raises(UsageError):
        GrantOffer(0, pages=0, path=str(tmp_path / "x"))


def test_copy_segments_are_validated_before_any_ioctl() -> None:
    # A regular file stands in for the device: validation must fail before ioctl.
    r, w = os.pipe()
    try:
        from grantscope.xen.gntdev import _grant_copy

        with pytest.raises(UsageError, match="crosses the page"):
            _grant_copy(r, [CopySegment(ForeignRef(0, 8, 4000), bytearray(200), 200)], "p")
        with pytest.raises(UsageError, match="writable"):
            _grant_copy(r, [CopySegment(ForeignRef(0, 8), b"immutable", 1)], "p")
        with pytest.raises(UsageError, match="at least one side"):
            _grant_copy(r, [CopySegment(b"a", bytearray(1), 1)], "p")
        with pytest.raises(UsageError, match="shorter"):
            _grant_copy(r, [CopySegment(ForeignRef(0, 8), bytearray(1), 2)], "p")
    finally:
        os.close(r)
        os.close(w)


# -- libc mmap/munmap pages --------------------------------------------------------------
def _file_fd(tmp_path: Path, size: int = 8192) -> int:
    path = tmp_path / "pages"
    path.write_bytes(bytes(size))
    return os.open(path, os.O_RDWR)


def test_mapped_pages_write_through_and_release(tmp_path: Path) -> None:
    fd = _file_fd(tmp_path)
    try:
        pages = MappedPages(fd, 8192, 0, writable=True)
        pages.view[4096:4101] = b"hello"
        with open(tmp_path / "pages", "rb") as f:
            f.seek(4096)
            assert f.read(5) == b"hello"  # MAP_SHARED: the file sees the write
        pages.release()
        pages.release()  # idempotent
        with pytest.raises(ValueError):
            pages.view[0]
    finally:
        os.close(fd)


def test_read_only_pages_refuse_writes(tmp_path: Path) -> None:
    fd = _file_fd(tmp_path)
    try:
        pages = MappedPages(fd, 4096, 0, writable=False)
        assert pages.view.readonly
        with pytest.raises(TypeError):
            pages.view[0:1] = b"x"
        pages.release()
    finally:
        os.close(fd)


def test_stale_derived_view_reads_zeros_instead_of_crashing(tmp_path: Path) -> None:
    fd = _file_fd(tmp_path)
    try:
        pages = MappedPages(fd, 4096, 0, writable=True)
        pages.view[0:3] = b"abc"
        stale = pages.view[0:16]  # someone keeps a slice
        pages.release()
        assert bytes(stale[0:3]) == b"\0\0\0"  # anonymous memory now, not a hole
        with open(tmp_path / "pages", "rb") as f:
            assert f.read(3) == b"abc"  # the device/file mapping itself was released
    finally:
        os.close(fd)


def test_mmap_failure_is_oserror(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY)  # a directory cannot be mapped
    try:
        with pytest.raises(OSError):
            MappedPages(fd, 4096, 0, writable=True)
    finally:
        os.close(fd)
    assert mmap.PAGESIZE == 4096


def test_host_module_table_covers_the_three_devices() -> None:
    assert _host.module_for("/dev/xen/gntdev") == ("xen-gntdev", "xen_gntdev")
    assert _host.module_for("/dev/xen/gntalloc") == ("xen-gntalloc", "xen_gntalloc")
    assert _host.module_for("/dev/xen/evtchn") == ("xen-evtchn", "xen_evtchn")
