"""The domU helper's pure parts: specs, xl configs; and the leak check's parsers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from grantscope.lab import paths
from grantscope.lab.build import LabBuild
from grantscope.lab.cmdline import decode_params, encode_params
from grantscope.lab.domu import DomU, lab_vif, parse_domu_spec, xl_config
from grantscope.lab.errors import LabError
from grantscope.lab.leaks import Holdings, own_mappings, parse_lsevtchn

BUILD = LabBuild(Path("/lab/b"), "k", "4.17", "linux-image-x", "1", "6.1.0-56-amd64")


def test_domu_spec() -> None:
    assert parse_domu_spec("offer") == ("pv", "offer")
    assert parse_domu_spec("pvh:echo") == ("pvh", "echo")
    assert parse_domu_spec("hvm") == ("hvm", "agent")
    assert parse_domu_spec("pvh:agent") == ("pvh", "agent")
    for bad in ("nope", "kvm:offer", "pv:"):
        with pytest.raises(LabError) as err:
            parse_domu_spec(bad)
        assert err.value.exit_code == 2


def test_agent_guest_boots_the_python_image_named_by_lab_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "pyguest.cpio"
    monkeypatch.delenv("GRANTSCOPE_LAB_PYGUEST", raising=False)
    with pytest.raises(LabError, match="no Python guest image") as err:
        DomU("agent", kind="pvh")
    assert err.value.exit_code == 2
    image.write_bytes(b"070701")
    monkeypatch.setenv("GRANTSCOPE_LAB_PYGUEST", str(image))
    guest = DomU("agent", kind="hvm", memory_mb=512)
    assert guest.ramdisk == image
    cfg = xl_config("g", "hvm", BUILD, "", 512, guest.ramdisk)
    assert f'ramdisk = "{image}"' in cfg and "memory = 512" in cfg
    assert DomU("offer").ramdisk is None  # the C peer's image, from the build


def test_pv_config_passes_parameters_on_the_kernel_line() -> None:
    words = encode_params({"scenario": "map", "reply": "hi there"})
    cfg = xl_config("gs-map-1", "pv", BUILD, words, 128)
    assert 'name = "gs-map-1"' in cfg and 'type = "pv"' in cfg
    assert 'kernel = "/lab/b/vmlinuz"' in cfg and 'ramdisk = "/lab/b/domu.cpio.gz"' in cfg
    extra = next(line for line in cfg.splitlines() if line.startswith("extra"))
    assert decode_params(extra.split("=", 1)[1].strip().strip('"')) == {
        "scenario": "map", "reply": "hi there"}
    assert 'on_poweroff = "destroy"' in cfg and "memory = 128" in cfg


def test_hvm_config_uses_cmdline_with_hvc0_last() -> None:
    cfg = xl_config("g", "hvm", BUILD, "gs_scenario=echo", 128)
    cmdline = next(line for line in cfg.splitlines() if line.startswith("cmdline"))
    assert "console=ttyS0 console=hvc0" in cmdline and "memory = 256" in cfg
    assert "extra" not in cfg


def test_unknown_scenario_and_type_are_usage_errors() -> None:
    with pytest.raises(LabError):
        DomU("dance")
    with pytest.raises(LabError):
        DomU("offer", kind="kvm")


def test_an_unstarted_domu_has_no_home() -> None:
    with pytest.raises(LabError, match="not started"):
        _ = DomU("offer", name="x").home


LSEVTCHN = """\
   1: VCPU 0: Virtual IRQ 0
  26: VCPU 0: Interdomain (Connected) - Remote Domain 0, Port 13
  27: VCPU 1: Interdomain (Connected) - Remote Domain 1, Port 1
  30: VCPU 0: Port unbound (Remote domain 0)\x20
"""


def test_lsevtchn_ports() -> None:
    ports = parse_lsevtchn(LSEVTCHN)
    assert "27: VCPU 1: Interdomain (Connected) - Remote Domain 1, Port 1" in ports
    assert "30: VCPU 0: Port unbound (Remote domain 0)" in ports
    assert len(ports) == 4


def test_own_mappings_only_grant_devices() -> None:
    maps = ("7f00-7f01 rw-s 00000000 00:05 12 /dev/xen/gntdev\n"
            "7f02-7f03 rw-s 00000000 00:05 13 /dev/xen/gntalloc\n"
            "7f04-7f05 r-xp 00000000 08:01 99 /usr/lib/libc.so.6\n")
    assert own_mappings(maps) == {"7f00-7f01 rw-s 00000000 00:05 12 /dev/xen/gntdev",
                                  "7f02-7f03 rw-s 00000000 00:05 13 /dev/xen/gntalloc"}


def test_holdings_report_only_what_is_new() -> None:
    before = Holdings(frozenset({"m1"}), frozenset({"3 -> /dev/xen/evtchn"}), frozenset({"1: a"}))
    after = Holdings(frozenset({"m1", "m2"}), frozenset({"3 -> /dev/xen/evtchn"}),
                     frozenset({"1: a", "9: b"}))
    assert after.new_since(before) == ["mapping: m2", "dom0 port: 9: b"]
    assert before.new_since(after) == []


def test_entering_a_started_guest_does_not_create_it_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    guest = DomU("offer")
    starts: list[int] = []
    monkeypatch.setattr(guest, "start", lambda: starts.append(1) or guest)
    monkeypatch.setattr(guest, "destroy", lambda: None)
    with guest:
        pass
    guest.domid = 12
    with guest as entered:
        assert entered is guest
    assert starts == [1]


def test_xl_options_are_appended_and_the_lab_vif_uses_the_lab_script() -> None:
    vif = lab_vif(2)
    assert vif == f"['script={paths.VIF_SCRIPT}', 'script={paths.VIF_SCRIPT}']"
    cfg = xl_config("g", "pv", BUILD, "", 512, None,
                    {"max_grant_frames": "2", "vif": lab_vif()}).splitlines()
    assert cfg[-2:] == ["max_grant_frames = 2", f"vif = ['script={paths.VIF_SCRIPT}']"]


def test_vif_hotplug_script_brings_the_interface_up_and_reports_connected(
        tmp_path: Path) -> None:
    # libxl runs it with XENBUS_PATH; stand-ins for ip and xenstore-write record the calls.
    log = tmp_path / "calls"
    for tool in ("ip", "xenstore-write", "xenstore-rm"):
        stub = tmp_path / tool
        stub.write_text(f"#!/bin/sh\necho {tool} \"$@\" >> {log}\n")
        stub.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "XENBUS_PATH": "/local/domain/0/backend/vif/5/0"}
    subprocess.run([str(paths.VIF_SCRIPT), "online"], env=env, check=True)
    subprocess.run([str(paths.VIF_SCRIPT), "offline"], env=env, check=True)
    assert log.read_text().splitlines() == [
        "ip link set dev vif5.0 up",
        "xenstore-write /local/domain/0/backend/vif/5/0/hotplug-status connected",
        "ip link set dev vif5.0 down",
        "xenstore-rm /local/domain/0/backend/vif/5/0/hotplug-status",
    ]


def test_a_port_left_to_a_destroyed_guest_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    from grantscope.lab import leaks

    monkeypatch.setattr(leaks, "ports_left_to", lambda domid, timeout: "")
    leaks.wait_ports_released(5)
    monkeypatch.setattr(leaks, "ports_left_to",
                        lambda domid, timeout: f"dom0 ports to destroyed d{domid} remain")
    with pytest.raises(LabError, match="destroyed d5 remain"):
        leaks.wait_ports_released(5)


def test_the_xenstore_a_destroyed_guest_left_is_named() -> None:
    """Its home and every dom0 backend directory for it, nothing of other domains."""
    from xsd_double import running_double

    from grantscope.lab.leaks import xenstore_left_by
    from grantscope.xen.xenstore import XenStore

    with running_double() as xsd, XenStore.open(xsd.socket_path) as store:
        store.write("/local/domain/0/name", b"Domain-0")
        assert xenstore_left_by(5, store) == []  # no backend directory at all
        store.write("/local/domain/0/backend/vif/6/0/state", b"4")
        store.write("/local/domain/6/name", b"another")
        assert xenstore_left_by(5, store) == []
        store.write("/local/domain/5/device/vif/0/state", b"4")
        store.write("/local/domain/0/backend/vif/5/0/state", b"4")
        store.write("/local/domain/0/backend/console/5/0/state", b"4")
        assert xenstore_left_by(5, store) == [
            "/local/domain/5", "/local/domain/0/backend/vif/5",
            "/local/domain/0/backend/console/5"]
        store.rm("/local/domain/5")
        store.rm("/local/domain/0/backend/vif/5")
        assert xenstore_left_by(5, store) == ["/local/domain/0/backend/console/5"]
