"""Module closures from ``modprobe --show-depends`` output."""

from __future__ import annotations

import pytest

from grantscope.lab.errors import LabError
from grantscope.lab.modules import DOM0_MODULES, DOMU_MODULES, merge_closures, parse_show_depends

K = "/lab/k/lib/modules/6.1.0-56-amd64/kernel"
# Real modprobe output ends each insmod line with a space.
SHOW_9P = "".join(
    f"insmod {K}/{m} \n"
    for m in ("fs/netfs/netfs.ko", "fs/fscache/fscache.ko", "net/9p/9pnet.ko", "fs/9p/9p.ko")
)
SHOW_VIRTIO_NET = (
    f"insmod {K}/net/9p/9pnet.ko \nbuiltin virtio\ninsmod {K}/net/9p/9pnet_virtio.ko opt=1\n"
)


def test_insmod_lines_in_load_order() -> None:
    assert [p.rsplit("/", 1)[1] for p in parse_show_depends(SHOW_9P)] == [
        "netfs.ko", "fscache.ko", "9pnet.ko", "9p.ko",
    ]


def test_builtin_lines_need_no_file_and_options_are_dropped() -> None:
    paths = parse_show_depends(SHOW_VIRTIO_NET)
    assert paths == [
        "/lab/k/lib/modules/6.1.0-56-amd64/kernel/net/9p/9pnet.ko",
        "/lab/k/lib/modules/6.1.0-56-amd64/kernel/net/9p/9pnet_virtio.ko",
    ]


def test_unknown_line_is_an_error() -> None:
    with pytest.raises(LabError, match="unexpected line"):
        parse_show_depends("rmmod foo\n")


def test_merge_keeps_first_position_only() -> None:
    merged = merge_closures([parse_show_depends(SHOW_9P), parse_show_depends(SHOW_VIRTIO_NET)])
    names = [p.rsplit("/", 1)[1] for p in merged]
    assert names == ["netfs.ko", "fscache.ko", "9pnet.ko", "9p.ko", "9pnet_virtio.ko"]


def test_module_lists_cover_what_the_lab_needs() -> None:
    for needed in ("9p", "9pnet_virtio", "overlay", "virtio_pci", "xenfs"):
        assert needed in DOM0_MODULES
    for device in ("xen-evtchn", "xen-gntdev", "xen-gntalloc"):
        assert device in DOM0_MODULES and device in DOMU_MODULES
