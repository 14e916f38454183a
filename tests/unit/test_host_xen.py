"""The xen backend's detection and the no-Xen path of plain ``grantscope`` (no Xen needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

import grantscope.host.xen as xen_host
from grantscope.cli import main
from grantscope.errors import NoXenError
from grantscope.xen._host import is_dom0, is_xen_host


def test_is_xen_host_reads_sys_hypervisor(tmp_path: Path) -> None:
    assert not is_xen_host(str(tmp_path))
    (tmp_path / "sys/hypervisor").mkdir(parents=True)
    (tmp_path / "sys/hypervisor/type").write_text("kvm\n")
    assert not is_xen_host(str(tmp_path))
    (tmp_path / "sys/hypervisor/type").write_text("xen\n")
    assert is_xen_host(str(tmp_path))


def test_is_xen_host_via_dev_xen(tmp_path: Path) -> None:
    (tmp_path / "dev/xen").mkdir(parents=True)
    assert is_xen_host(str(tmp_path))


def test_is_xen_host_via_xenfs(tmp_path: Path) -> None:
    (tmp_path / "proc/xen").mkdir(parents=True)
    (tmp_path / "proc/xen/capabilities").write_text("control_d\n")
    assert is_xen_host(str(tmp_path))


def test_xen_host_refuses_without_xen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("grantscope.xen._host.is_xen_host", lambda root="/": False)
    with pytest.raises(NoXenError) as info:
        xen_host.XenHost()
    assert info.value.exit_code == 2
    assert "--demo" in info.value.explanation and "lab shell" in info.value.explanation


def test_plain_grantscope_without_xen_explains_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("grantscope.xen._host.is_xen_host", lambda root="/": False)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "not running on Xen" in err and "grantscope --demo" in err and "Traceback" not in err


def test_unknown_theme_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "--theme", "no-such-theme"]) == 2
    err = capsys.readouterr().err
    assert "no-such-theme" in err and "grantscope-dark" in err


def _tree(root: Path, files: dict[str, str]) -> str:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return str(root)


CAPS = "proc/xen/capabilities"
INITDOMAIN = "sys/hypervisor/start_flags/initdomain"


@pytest.mark.parametrize(("files", "expected"), [
    ({}, None),  # not Xen, or a kernel that says neither
    ({"sys/hypervisor/type": "xen\n"}, None),
    ({CAPS: "control_d\n"}, True),  # xenfs mounted in dom0
    ({CAPS: ""}, False),  # xenfs mounted in a domU: the file is there, empty
    ({INITDOMAIN: "1\n"}, True),  # dom0 without xenfs (sysfs only)
    ({INITDOMAIN: "0\n"}, False),
    ({CAPS: "", INITDOMAIN: "1\n"}, True),  # either kernel answer makes it dom0
    ({CAPS: "control_d\n", INITDOMAIN: "0\n"}, True),
])
def test_is_dom0_reads_xenfs_and_start_flags(tmp_path: Path, files: dict[str, str],
                                             expected: bool | None) -> None:
    assert is_dom0(_tree(tmp_path, files)) is expected


def test_xen_host_info_calls_a_dom0_without_xenfs_dom0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("grantscope.xen._host.is_xen_host", lambda root="/": True)
    monkeypatch.setattr("grantscope.xen._host.is_dom0", lambda root="/": True)
    host = xen_host.XenHost()
    monkeypatch.setattr(host, "store", lambda: pytest.fail("dom0 needs no XenStore domid"))
    info = host.info()
    assert info.is_dom0 and info.domid == 0


@pytest.mark.parametrize(("dom0", "domid", "expected"), [
    (False, b"5", False), (None, b"0", True), (None, b"7", False)])
def test_xen_host_info_asks_xenstore_when_the_kernel_does_not_say(
        monkeypatch: pytest.MonkeyPatch, dom0: bool | None, domid: bytes,
        expected: bool) -> None:
    class Store:
        def read_or_none(self, path: str) -> bytes:
            return domid

    monkeypatch.setattr("grantscope.xen._host.is_xen_host", lambda root="/": True)
    monkeypatch.setattr("grantscope.xen._host.is_dom0", lambda root="/": dom0)
    host = xen_host.XenHost()
    monkeypatch.setattr(host, "store", Store)
    info = host.info()
    assert (info.is_dom0, info.domid) == (expected, int(domid))


@pytest.mark.parametrize(("dom0", "xen", "role"), [
    (True, True, "dom0"), (False, True, "domU"), (None, True, "domU"), (None, False, "none")])
def test_bundle_host_facts_take_the_role_from_the_same_checks(
        monkeypatch: pytest.MonkeyPatch, dom0: bool | None, xen: bool, role: str) -> None:
    from grantscope.bundle.collectors import collect_host

    monkeypatch.setattr("grantscope.xen._host.is_dom0", lambda root="/": dom0)
    monkeypatch.setattr("grantscope.xen._host.is_xen_host", lambda root="/": xen)
    assert collect_host(None)["host.json"]["role"] == role


def test_local_domid_is_0_in_dom0_else_xenstores(monkeypatch: pytest.MonkeyPatch) -> None:
    from grantscope.sources.observation import local_domid

    class Store:
        def read_or_none(self, path: str) -> bytes:
            return b"3"

    monkeypatch.setattr("grantscope.xen._host.is_dom0", lambda root="/": True)
    assert local_domid(Store()) == 0
    monkeypatch.setattr("grantscope.xen._host.is_dom0", lambda root="/": None)
    assert local_domid(Store()) == 3
