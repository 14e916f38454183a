"""The xen backend's detection and the no-Xen path of plain ``grantscope`` (no Xen needed)."""

from pathlib import Path

import pytest

import grantscope.host.xen as xen_host
from grantscope.cli import main
from grantscope.errors import NoXenError
from grantscope.xen._host import is_xen_host


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
