"""The initramfs writer, the build's cache key and kernel lookup (no download, no QEMU)."""

from __future__ import annotations

import gzip
import json
import stat
from pathlib import Path

import pytest

from grantscope.lab.build import (
    LabBuild,
    build_key,
    is_stale,
    load_build,
    parse_kernel_dependency,
    source_hash,
)
from grantscope.lab.cpio import InitramfsBuilder, newc_archive
from grantscope.lab.errors import LabError


def parse_newc(data: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """A minimal newc reader: (name, mode, data, rdev) per member, without the trailer."""
    members: list[tuple[str, int, bytes, tuple[int, int]]] = []
    pos = 0
    while True:
        assert data[pos : pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = fields[1], fields[6], fields[9], fields[10], fields[11]
        name_start = pos + 110
        name = data[name_start : name_start + namesize - 1].decode()
        body = (name_start + namesize + 3) // 4 * 4
        content = data[body : body + size]
        pos = (body + size + 3) // 4 * 4
        if name == "TRAILER!!!":
            return members
        members.append((name, mode, content, (rmaj, rmin)))


def test_archive_members_parents_devices_and_links(tmp_path: Path) -> None:
    img = InitramfsBuilder()
    img.add_bytes("init", b"#!/bin/sh\n", 0o755)
    img.add_bytes("lib/modules/6.1/kernel/x.ko", b"\x7fELF" + b"\0" * 9)
    img.symlink("bin/sh", "busybox")
    img.chardev("dev/console", 5, 1)
    out = tmp_path / "img.cpio.gz"
    img.write(out)
    members = {m[0]: m for m in parse_newc(gzip.decompress(out.read_bytes()))}
    assert set(members) == {"init", "lib", "lib/modules", "lib/modules/6.1",
                            "lib/modules/6.1/kernel", "lib/modules/6.1/kernel/x.ko", "bin",
                            "bin/sh", "dev", "dev/console"}
    assert members["init"][2] == b"#!/bin/sh\n" and stat.S_IMODE(members["init"][1]) == 0o755
    assert stat.S_ISDIR(members["lib/modules"][1])
    assert stat.S_ISLNK(members["bin/sh"][1]) and members["bin/sh"][2] == b"busybox"
    assert stat.S_ISCHR(members["dev/console"][1]) and members["dev/console"][3] == (5, 1)
    assert members["lib/modules/6.1/kernel/x.ko"][2] == b"\x7fELF" + b"\0" * 9


def test_archive_is_reproducible(tmp_path: Path) -> None:
    def make(path: Path) -> bytes:
        img = InitramfsBuilder()
        img.add_bytes("b", b"2")
        img.add_bytes("a/x", b"1")
        img.write(path)
        return path.read_bytes()

    assert make(tmp_path / "1.gz") == make(tmp_path / "2.gz")


def test_every_header_and_body_is_4_byte_aligned() -> None:
    from grantscope.lab.cpio import Entry

    data = newc_archive([Entry("abc", stat.S_IFREG | 0o644, b"12345")])
    assert len(data) % 4 == 0
    assert parse_newc(data) == [("abc", stat.S_IFREG | 0o644, b"12345", (0, 0))]


def test_kernel_package_from_apt_cache_depends() -> None:
    out = ("linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n"
           "  Recommends: firmware-linux-free\n")
    assert parse_kernel_dependency(out) == "linux-image-6.1.0-56-amd64"
    with pytest.raises(LabError, match="which kernel"):
        parse_kernel_dependency("linux-image-amd64\n  Recommends: x\n")


def test_build_key_follows_versions_and_sources() -> None:
    versions = {"xen_version": "4.17.7", "kernel_package_version": "6.1.192-2"}
    key = build_key(versions, "aaa")
    assert key == build_key(dict(versions), "aaa") and len(key) == 16
    assert key != build_key(versions, "aab")
    assert key != build_key({**versions, "kernel_package_version": "6.1.193-1"}, "aaa")


def test_incomplete_build_is_reported_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(LabError) as err:
        load_build(tmp_path)
    assert "grantscope lab build" in err.value.explanation


def test_build_paths(tmp_path: Path) -> None:
    build = LabBuild(tmp_path, "k", "4.17", "linux-image-6.1.0-56-amd64", "6.1.192-2",
                     "6.1.0-56-amd64")
    assert build.xen == tmp_path / "xen" and build.peer == tmp_path / "xenpeer"
    assert build.to_json()["domu_initrd"] == str(tmp_path / "domu.cpio.gz")


def test_a_build_from_other_sources_is_stale(tmp_path: Path) -> None:
    versions = {"xen_package": "xen-hypervisor-4.17-amd64", "xen_version": "4.17.7",
                "kernel_package": "linux-image-6.1.0-56-amd64", "kernel_package_version": "1"}

    def made(key: str) -> LabBuild:
        (tmp_path / "manifest.json").write_text(json.dumps(
            {**versions, "key": key, "kernel_release": "6.1.0-56-amd64", "built": 1.0}))
        return load_build(tmp_path)

    assert not is_stale(made(build_key(versions, source_hash())))
    # Built before an init script, the peer or a module list changed: 'lab run' rebuilds.
    assert is_stale(made(build_key(versions, "sources of an older checkout")))
