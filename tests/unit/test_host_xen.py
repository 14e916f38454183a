"""The xen backend's detection and the no-Xen path of plain ``grantscope`` (no Xen needed)."""

from pathlib import Path

import pytest

import grantscope.host.xen as xen_host
from grantscope.cli import main
from grantscope.errors import NoXenError


def test_xen_present_reads_sys_hypervisor(tmp_path: Path) -> None:
    assert not xen_host.xen_present(str(tmp_path))
    (tmp_path / "sys/hypervisor").mkdir(parents=True)
    (tmp_path / "sys/hypervisor/type").write_text("kvm\n")
    assert not xen_host.xen_present(str(tmp_path))
    (tmp_path / "sys/hypervisor/type").write_text("xen\n")
    assert xen_host.xen_present(str(tmp_path))


def test_xen_present_via_dev_xen(tmp_path: Path) -> None:
    (tmp_path / "dev/xen").mkdir(parents=True)
    assert xen_host.xen_present(str(tmp_path))


def test_xen_host_refuses_without_xen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xen_host, "xen_present", lambda root="/": False)
    with pytest.raises(NoXenError) as info:
        xen_host.XenHost()
    assert info.value.exit_code == 2
    assert "--demo" in info.value.explanation and "lab shell" in info.value.explanation


def test_plain_grantscope_without_xen_explains_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(xen_host, "xen_present", lambda root="/": False)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "not a Xen host" in err and "grantscope --demo" in err and "Traceback" not in err


def test_unknown_theme_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "--theme", "no-such-theme"]) == 2
    err = capsys.readouterr().err
    assert "no-such-theme" in err and "grantscope-dark" in err
