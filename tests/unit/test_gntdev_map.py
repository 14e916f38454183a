"""A gntdev map's two paths, the compiled one and the Python one, behave alike.

No Xen here: the "device" is a memfd opened through /proc/self/fd, and FIONREAD stands in for
MAP_GRANT_REF and UNMAP_GRANT_REF (on a regular file it succeeds and leaves the index field at
0), so a map is an mmap of the memfd's first pages, and what is written through a mapping can
be read back from the memfd.  An ioctl the memfd does not know (ENOTTY) stands in for a
failing MAP_GRANT_REF or UNMAP_GRANT_REF.
"""

from __future__ import annotations

import errno
import os
import sys
import termios
from collections.abc import Iterator

import pytest

from grantscope.xen import abi, compiled, gntdev
from grantscope.xen.errors import XenError
from grantscope.xen.gntdev import Gntdev

_UNKNOWN_IOCTL = 0x4B4F  # no file on this memfd answers it: ENOTTY


def _force_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the compiled module were missing: its import fails."""
    monkeypatch.setattr(compiled, "_loaded", None)
    monkeypatch.setattr(compiled, "_reason", None)
    monkeypatch.setitem(sys.modules, "grantscope.xen._evtloop", None)


@pytest.fixture(params=["c", "python"])
def memfd(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A two-page memfd, with maps going through the path named by the param."""
    monkeypatch.setattr(gntdev, "_c_map", gntdev._UNSET)
    monkeypatch.setattr(gntdev, "_c_unmap", gntdev._UNSET)
    if request.param == "python":
        _force_python(monkeypatch)
    elif not compiled.available():
        pytest.fail(f"the compiled module is not built: {compiled.unavailable_reason()}")
    monkeypatch.setattr(abi, "IOCTL_GNTDEV_MAP_GRANT_REF", termios.FIONREAD)
    monkeypatch.setattr(abi, "IOCTL_GNTDEV_UNMAP_GRANT_REF", termios.FIONREAD)
    fd = os.memfd_create("gs-gntdev-stand-in")
    os.ftruncate(fd, 2 * abi.PAGE_SIZE)
    yield fd
    assert (gntdev._compiled_map() is not None) == (request.param == "c")
    os.close(fd)


def _device(fd: int) -> Gntdev:
    return Gntdev(path=f"/proc/self/fd/{fd}")


def test_what_is_written_through_a_mapping_reaches_the_pages(memfd: int) -> None:
    with _device(memfd) as dev:
        mapping = dev.map(3, [7, 8])
        assert len(mapping.page) == 2 * abi.PAGE_SIZE
        mapping.write(abi.PAGE_SIZE - 2, b"gs!!")
        assert mapping.read(abi.PAGE_SIZE - 2, 4) == b"gs!!"
        assert mapping.index == 0
        mapping.close()
        assert mapping.closed and mapping.index == -1
    assert os.pread(memfd, 4, abi.PAGE_SIZE - 2) == b"gs!!"


def test_a_read_only_mapping_cannot_be_written(memfd: int) -> None:
    os.pwrite(memfd, b"peer", 0)
    with _device(memfd) as dev, dev.map(3, [7], writable=False) as mapping:
        assert mapping.page.readonly
        assert bytes(mapping.page[:4]) == b"peer"


def test_a_view_held_past_close_reads_zeros_instead_of_crashing(memfd: int) -> None:
    os.pwrite(memfd, b"data", 0)
    with _device(memfd) as dev:
        mapping = dev.map(3, [7])
        held = mapping.page[:4]
        mapping.close()
        assert bytes(held) == b"\0\0\0\0"
    assert os.pread(memfd, 4, 0) == b"data"


def test_a_failing_map_ioctl_is_named(memfd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(abi, "IOCTL_GNTDEV_MAP_GRANT_REF", _UNKNOWN_IOCTL)
    with _device(memfd) as dev, pytest.raises(XenError) as caught:
        dev.map(3, [7])
    assert caught.value.errno == errno.ENOTTY
    assert "IOCTL_GNTDEV_MAP_GRANT_REF" in str(caught.value)


def test_a_failing_mmap_unmaps_the_grants_and_is_named(memfd: int) -> None:
    # A read-only open cannot be mapped writable and shared: mmap says EACCES.
    dev = Gntdev.__new__(Gntdev)
    dev.path = "memfd (read-only)"
    dev._fd = os.open(f"/proc/self/fd/{memfd}", os.O_RDONLY)
    with dev, pytest.raises(XenError) as caught:
        dev.map(3, [7])
    assert caught.value.errno == errno.EACCES
    assert "mmap" in str(caught.value)


def test_a_failing_unmap_ioctl_is_named_and_the_mapping_still_closes(
        memfd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    with _device(memfd) as dev:
        mapping = dev.map(3, [7])
        monkeypatch.setattr(abi, "IOCTL_GNTDEV_UNMAP_GRANT_REF", _UNKNOWN_IOCTL)
        with pytest.raises(XenError) as caught:
            mapping.close()
        assert caught.value.errno == errno.ENOTTY
        assert "IOCTL_GNTDEV_UNMAP_GRANT_REF" in str(caught.value)
        assert mapping.closed
        mapping.close()  # idempotent after the failure


def test_bad_values_are_refused_before_any_syscall(memfd: int) -> None:
    with _device(memfd) as dev:
        for domid, grefs in ((70000, [1]), (True, [1]), (1, [2**32]), (1, [-1]), (1, ["7"]),
                             (1, [])):
            with pytest.raises(Exception) as caught:
                dev.map(domid, grefs)  # type: ignore[arg-type]
            assert type(caught.value).__name__ == "UsageError", (domid, grefs)
