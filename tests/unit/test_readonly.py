"""--readonly is enforced where each effect happens: the devices, XenStore and debug keys.

The effect sites are exercised directly (no command in between), so a command that forgot
the flag would still be refused; the CLI tests check the exit status and the one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from xsd_double import MKDIR, RM, SET_PERMS, WRITE, XsdDouble, running_double

from grantscope.cli import main
from grantscope.xen import errors as xen_errors
from grantscope.xen.errors import XenError
from grantscope.xen.evtchn import EventChannel
from grantscope.xen.gntalloc import GrantOffer
from grantscope.xen.gntdev import CopySegment, ForeignRef, GrantMapping, grant_copy
from grantscope.xen.readonly import ReadOnlyError, is_readonly, readonly_session
from grantscope.xen.xenstore import Perms, XenStore

MUTATING = {WRITE, MKDIR, RM, SET_PERMS}


@pytest.fixture
def xsd() -> Iterator[XsdDouble]:
    with running_double() as double:
        yield double


def test_session_is_scoped_and_nests() -> None:
    assert not is_readonly()
    with readonly_session():
        with readonly_session(False):
            assert is_readonly()  # an inner "not read-only" cannot lift it
        assert is_readonly()
    assert not is_readonly()


def test_xenstore_mutations_are_refused_on_the_wire(xsd: XsdDouble) -> None:
    xsd.put("/d/x", b"1")
    with XenStore.open(xsd.socket_path, timeout=2.0) as store, readonly_session():
        for action in (lambda: store.write("/d/y", b"2"), lambda: store.mkdir("/d/z"),
                       lambda: store.rm("/d/x"),
                       lambda: store.set_perms("/d/x", Perms.parse([b"n0"]))):
            with pytest.raises(ReadOnlyError) as info:
                action()
            assert info.value.exit_code == 2 and "--readonly" in info.value.message
            assert "\n" not in info.value.message
        # Reads, walks and watches still work.
        assert store.read("/d/x") == b"1" and store.list("/d") == ["x"]
        assert [n.path for n in store.walk("/d")] == ["/d/x"]
        with store.watch("/d") as watch:
            assert watch.get(1.0) == "/d"
    assert not [op for op, _path in xsd.requests if op in MUTATING]
    assert xsd.ls_f("/d") == ["/d/x = \"1\""] or sorted(xsd.nodes) == ["/", "/d", "/d/x"]


def test_xenstore_mutations_pass_outside_the_session(xsd: XsdDouble) -> None:
    with XenStore.open(xsd.socket_path, timeout=2.0) as store:
        store.write("/d/y", b"2")
        store.rm("/d/y")
    assert [op for op, _ in xsd.requests if op in MUTATING] == [WRITE, RM]


def test_gntalloc_is_refused_before_the_device_is_opened(tmp_path: Path) -> None:
    with readonly_session(), pytest.raises(ReadOnlyError, match="granting 1 page"):
        GrantOffer(1, path=str(tmp_path / "gntalloc"))  # absent: opening it would fail


def test_writable_map_is_refused_read_only_map_is_not(tmp_path: Path) -> None:
    absent = str(tmp_path / "gntdev")
    with readonly_session():
        with pytest.raises(ReadOnlyError, match="writable map"):
            GrantMapping(1, [8], writable=True, path=absent)
        with pytest.raises(XenError) as info:  # got as far as opening the device
            GrantMapping(1, [8], writable=False, path=absent)
        assert not isinstance(info.value, ReadOnlyError)
        with pytest.raises(ReadOnlyError, match="GRANT_COPY into"):
            grant_copy([CopySegment(b"x", ForeignRef(1, 8), 1)], path=absent)


def test_evtchn_bind_and_notify_are_refused(tmp_path: Path) -> None:
    fake = tmp_path / "evtchn"
    fake.write_bytes(b"")  # a regular file: any ioctl on it would fail with ENOTTY
    with EventChannel(path=str(fake)) as channel, readonly_session():
        for action, needle in ((lambda: channel.bind_unbound(1), "BIND_UNBOUND"),
                               (lambda: channel.bind_interdomain(1, 5), "BIND_INTERDOMAIN"),
                               (lambda: channel.bind_virq(3), "BIND_VIRQ"),
                               (lambda: channel.notify(5), "notifying")):
            with pytest.raises(ReadOnlyError, match=needle):
                action()
        assert channel.ports == frozenset()


@pytest.fixture
def xen_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Xen "present"; the evtchn device is a regular file (any ioctl on it would fail)."""
    import grantscope.xen.evtchn as evtchn_mod

    fake = tmp_path / "evtchn"
    fake.write_bytes(b"")
    monkeypatch.setattr(xen_errors, "require_xen", lambda root="/", **_kw: None)
    monkeypatch.setattr(evtchn_mod, "open_device",
                        lambda path, **kw: os.open(fake, os.O_RDWR | os.O_NONBLOCK))


@pytest.mark.parametrize("argv", [
    ["offer", "--to", "1"],
    ["offer", "--to", "1", "--writable", "--publish", "/x"],
    ["map", "--domid", "1", "--gref", "8", "--writable"],
    ["notify", "--domid", "1", "--port", "5"],
    ["pingpong", "--domid", "1", "--port", "5", "--count", "1"],
])
def test_cli_device_commands_refuse_with_exit_2(
        xen_here: None, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--readonly", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--readonly" in err[0] and err[0].startswith("grantscope: refused:")
    assert not is_readonly()  # the session ended with the command


def test_cli_dump_capture_refuses_and_runs_no_xl(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "argv.log"
    xl = tmp_path / "xl"
    xl.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    xl.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert main(["--readonly", "dump", "capture"]) == 2
    err = capsys.readouterr().err
    assert "--readonly" in err and "debug key" in err
    assert not log.exists()
