"""The lab itself works: xenstored, devices, xl, a PV domU peer, the C anchors, the leak check.

    grantscope lab run -- .venv/bin/pytest -m xen tests/xen/test_lab.py
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from grantscope.lab.build import current_build
from grantscope.lab.domu import DomU
from grantscope.lab.leaks import dom0_ports, holdings, own_device_fds

pytestmark = pytest.mark.xen

# _IOC(_IOC_NONE, 'E', 2, sizeof(struct ioctl_evtchn_bind_unbound_port)) from xen/evtchn.h
IOCTL_EVTCHN_BIND_UNBOUND_PORT = (ord("E") << 8) | 2 | (4 << 16)


def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)


def test_inside_the_lab_with_the_callers_environment() -> None:
    assert os.environ.get("GRANTSCOPE_IN_LAB") == "1"
    assert Path("/proc/xen/capabilities").read_text().strip() == "control_d"
    # The job runs in the caller's directory with the caller's virtualenv.
    assert Path.cwd().joinpath("pyproject.toml").exists()
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        assert os.environ["PATH"].split(":")[0].startswith(venv) or Path(venv).exists()
    assert os.geteuid() == 0


def test_results_share_is_writable_at_the_host_path() -> None:
    results = Path(os.environ["GRANTSCOPE_LAB_RESULTS"])
    probe = results / f"probe-{os.getpid()}.txt"
    probe.write_text("written in dom0\n")
    try:
        assert probe.read_text() == "written in dom0\n"
    finally:
        probe.unlink()


def test_host_root_is_read_only_under_a_writable_overlay() -> None:
    # Writes land in dom0's tmpfs overlay and never reach the host's files.
    marker = Path("/etc/gslab-overlay-check")
    marker.write_text("x")
    assert marker.read_text() == "x"
    marker.unlink()
    proc = run("findmnt", "-no", "FSTYPE", "/")
    assert proc.stdout.strip() == "overlay", proc


def test_xenstored_answers() -> None:
    proc = run("xenstore-read", "/local/domain/0/name")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Domain-0"
    assert Path("/run/xenstored/socket").is_socket()


@pytest.mark.parametrize("name", ["evtchn", "gntdev", "gntalloc", "privcmd", "xenbus"])
def test_device_nodes_present(name: str) -> None:
    mode = os.stat(f"/dev/xen/{name}").st_mode
    assert stat.S_ISCHR(mode), f"/dev/xen/{name} is not a character device"


def test_dev_fd_links_exist() -> None:
    # A bare devtmpfs has no /dev/fd; the lab's init creates it (bash <(...) needs it).
    proc = run("bash", "-c", "cat <(echo via-dev-fd)")
    assert proc.stdout.strip() == "via-dev-fd", proc.stderr


def test_xl_list_shows_dom0() -> None:
    proc = run("xl", "list")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()[1:]]
    assert ["Domain-0", "0"] in [row[:2] for row in rows]


def test_xl_info_has_hap_for_pvh_and_hvm_guests() -> None:
    proc = run("xl", "info")
    caps = next(line for line in proc.stdout.splitlines() if line.startswith("virt_caps"))
    assert "hap" in caps.split(":", 1)[1].split(), caps


def test_pv_domu_boots_and_writes_to_xenstore(offer_domu: DomU) -> None:
    gref = offer_domu.wait_key("data/gref")
    port = offer_domu.wait_key("data/port")
    assert gref.isdigit() and port.isdigit(), (gref, port)
    assert offer_domu.read_key("data/status") == "ready"
    listed = run("xl", "list").stdout
    assert offer_domu.name in listed
    # The guest's own console, logged by xenconsoled, shows the peer program running.
    deadline = time.monotonic() + 20
    while "xenpeer: offer: gref=" not in offer_domu.console_log():
        assert time.monotonic() < deadline, offer_domu.console_tail()
        time.sleep(0.5)
    assert f"gref={gref} port={port}" in offer_domu.console_log()


def test_dom0_c_peer_maps_the_domu_offer_and_gets_an_answer(offer_domu: DomU) -> None:
    # Both directions with the C peer alone: dom0 maps the domU's page, writes into it and
    # notifies; the domU writes what it finds to data/result and notifies back.
    before = int(offer_domu.read_key("data/notifications") or "0")
    reply = f"dom0-c-{os.getpid()}"
    proc = run(str(current_build().peer), "scenario", "map", f"remote={offer_domu.domid}",
               f"path={offer_domu.home}/data", f"reply={reply}", "life=0", "wait=30")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "saw 'hello from the offer peer'" in proc.stdout
    assert "drained 1 bind event" in proc.stdout, proc.stdout
    offer_domu.wait_value("data/notifications", str(before + 1), timeout=30)
    assert offer_domu.read_key("data/result") == reply


def test_domu_maps_a_dom0_offer_and_replies(domu_factory: Callable[..., DomU]) -> None:
    peer = domu_factory("map", path="data/offer", reply="pong from the map peer")
    peer.wait_value("data/status", "waiting")
    publish = f"{peer.home}/data/offer"
    dom0 = subprocess.Popen(
        [str(current_build().peer), "scenario", "offer", f"remote={peer.domid}",
         f"publish={publish}", "text=ping from dom0", "life=60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        peer.wait_value("data/status", "replied", timeout=60)
        assert peer.read_key("data/seen") == "ping from dom0"
        # dom0's offer loop saw the notification and what the domU wrote into its page.
        deadline = time.monotonic() + 30
        while peer.read_key(f"{publish}/result") is None:
            assert time.monotonic() < deadline, peer.console_tail()
            time.sleep(0.25)
        assert peer.read_key(f"{publish}/result") == "pong from the map peer"
    finally:
        dom0.kill()
        out, _ = dom0.communicate(timeout=30)
    assert "notification 1, page says 'pong from the map peer'" in out, out


def test_domu_is_gone_after_destroy() -> None:
    with DomU("echo") as peer:
        peer.wait_key("data/port")
        domid = peer.domid
    assert not peer.alive()
    assert run("xenstore-read", f"/local/domain/{domid}/data/port").returncode != 0
    assert run("xl", "domid", peer.name).returncode != 0


def test_c_anchor_evtchn_loopback_prints_percentiles() -> None:
    proc = run(str(current_build().peer), "bench-evtchn", "50", "5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["bench"] == "evtchn-loopback-roundtrip" and result["n"] == 50
    # A sample the clock held at 0 is taken again, so even the fastest one took time.
    assert 0 < result["min"] <= result["p50"] <= result["p99"] <= result["max"]
    assert 0 <= result["retaken"] <= 10 * 50


def test_c_anchor_gnt_selfmap_prints_percentiles() -> None:
    proc = run(str(current_build().peer), "bench-gnt", "30", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["bench"] == "gnt-selfmap-map-unmap" and result["n"] == 30
    assert 0 < result["min"] <= result["p50"] <= result["p99"] <= result["max"]
    assert 0 <= result["retaken"] <= 10 * 30


def test_leak_check_sees_a_bound_port_and_its_fd() -> None:
    # The autouse leak check must be able to fail: hold a port, look, release, look again.
    before = holdings()
    fd = os.open("/dev/xen/evtchn", os.O_RDWR)
    try:
        arg = bytearray(struct.pack("I", 0))
        port = fcntl.ioctl(fd, IOCTL_EVTCHN_BIND_UNBOUND_PORT, arg)
        assert port > 0
        held = holdings().new_since(before)
        assert any(line.startswith(f"dom0 port: {port}: ") for line in held), held
        assert any("/dev/xen/evtchn" in line for line in held), held
    finally:
        os.close(fd)
    assert not any("/dev/xen/evtchn" in f for f in own_device_fds() - before.fds)
    deadline = time.monotonic() + 10
    while any(p.startswith(f"{port}: ") for p in dom0_ports() - before.ports):
        assert time.monotonic() < deadline, "closing the fd did not free the port"
        time.sleep(0.2)


def test_domu_module_runs_a_command_while_the_peer_is_up() -> None:
    proc = run(sys.executable, "-m", "grantscope.lab.domu", "--scenario", "echo", "--",
               "sh", "-c", 'xenstore-read "$GRANTSCOPE_DOMU_HOME/data/port"', timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().isdigit()
    assert "is domain" in proc.stderr
