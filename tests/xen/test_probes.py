"""Every built-in probe on real Xen, and what is left behind: run INSIDE dom0 of the lab.

    grantscope lab run -- .venv/bin/pytest -q tests/xen/test_probes.py

"Nothing left behind" is checked from outside the probe: the tier's autouse
fixture (tests/xen/conftest.py) fails a test whose process still holds a /dev/xen
fd or mapping, or leaves a new port in ``lsevtchn 0``; the tests here also check
the probe's own ports are gone, a one-byte GRANT_COPY of each gref it granted no
longer succeeds (the grant ended), and its XenStore keys are gone.  A probe process
killed with SIGKILL loses its grant and port to the kernel, but its XenStore keys
stay (only a writer can remove them); with SIGTERM its cleanup runs.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grantscope.lab.domu import DomU
from grantscope.lab.leaks import wait_guest_released
from grantscope.probing.devices import RealDevices
from grantscope.probing.engine import ProbeRun, StepRecord
from grantscope.probing.registry import find_probe
from grantscope.sources.lsevtchn import find_lsevtchn
from grantscope.xen.evtchn import EventChannel
from grantscope.xen.gntalloc import GrantOffer
from grantscope.xen.gntdev import probe_grant_status
from grantscope.xen.xenstore import XenStore

pytestmark = pytest.mark.xen

LSEVTCHN = find_lsevtchn() or "lsevtchn"     # the booted Xen release's own tool
ROOT = Path(__file__).resolve().parents[2]
DOMID_SELF = 0x7FF0


# -- what this process holds, what Xen lists --------------------------------------
def _dom0_ports() -> dict[int, str]:
    out = subprocess.run([LSEVTCHN, "0"], capture_output=True, text=True, timeout=60, check=True)
    ports = {}
    for line in out.stdout.splitlines():
        m = re.match(r"^\s*(\d+): VCPU \d+: (.*)$", line)
        if m:
            ports[int(m.group(1))] = m.group(2)
    return ports


def _grant_ended(gref: int, timeout: float = 5.0) -> bool:
    """A GRANT_COPY of dom0's ``gref`` fails once the grant ended (freeing may lag a bit)."""
    deadline = time.monotonic() + timeout
    while True:
        if probe_grant_status(0, gref) != 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@pytest.fixture
def store() -> Iterator[XenStore]:
    with XenStore.open() as xs:
        yield xs


def _run(name: str, values: dict[str, str]) -> tuple[ProbeRun, list[StepRecord]]:
    devices = RealDevices()
    try:
        run = ProbeRun(find_probe(name), values, devices)
        with run:
            run.run_all()
    finally:
        devices.close()
    return run, [r for r in run.records if r.phase == "step"]


def _by_name(records: list[StepRecord], name: str) -> StepRecord:
    return next(r for r in records if r.name == name)


def _failures(run: ProbeRun) -> list[tuple[str, str]]:
    return [(r.name, r.explanation) for r in run.records if not r.ok]


# -- each probe on real devices ------------------------------------------------------
def test_mailbox_loopback(store: XenStore) -> None:
    run, steps = _run("mailbox-loopback", {"message": "real mailbox"})
    assert run.ok, _failures(run)
    path = _by_name(steps, "find this domain's id and the mailbox path").result["path"]
    assert path == "/local/domain/0/data/grantscope-mailbox"
    gref = _by_name(steps, "grant a page").result["gref"]
    port = _by_name(steps, "bind an unbound port").result["port"]
    local = _by_name(steps, "bind to the remote port").result["local_port"]
    assert _by_name(steps, "read gref and port from XenStore").result == {"gref": gref,
                                                                          "port": port}
    assert _by_name(steps, "read the message through the offered page").result["text"] == (
        "real mailbox")
    assert _by_name(steps, "wait for the event on the offer side").result["fired"] is True
    assert all(r.ok for r in run.records if r.phase == "cleanup")
    assert not store.exists(path)
    listed = _dom0_ports()
    assert port not in listed and local not in listed, listed
    assert _grant_ended(gref)


def test_pingpong_loopback() -> None:
    run, steps = _run("pingpong", {"count": "20"})
    assert run.ok, _failures(run)
    stats = steps[-1].result
    assert stats["round_trips"] == 20 and 0 < stats["min_us"] <= stats["max_us"]
    assert stats["loop"] == "c" and "loop_note" not in stats  # the compiled loop timed them
    echo = _by_name(steps, "bind an unbound port").result["port"]
    assert echo not in _dom0_ports()


def test_offer_page_publishes_then_removes(store: XenStore) -> None:
    path = "/local/domain/0/data/grantscope-test-offer"
    run, steps = _run("offer-page", {"domid": "self", "publish": path, "message": "offered"})
    assert run.ok, _failures(run)
    gref = _by_name(steps, "grant a page").result["gref"]
    port = _by_name(steps, "bind an unbound port").result["port"]
    written = _by_name(steps, "publish in XenStore").result["written"]
    assert written == {f"{path}/gref": str(gref), f"{path}/port": str(port)}
    assert steps[-1].result["text"] == "offered"
    assert not store.exists(path)
    assert port not in _dom0_ports()
    assert _grant_ended(gref)


def test_map_grant_with_xs_gref(store: XenStore) -> None:
    path = "/local/domain/0/data/grantscope-test-map"
    with GrantOffer(0, 1, writable=False) as offer:
        offer.write(0, b"granted by the test\0")
        store.write(f"{path}/gref", str(offer.grefs[0]).encode())
        try:
            run, steps = _run("map-grant", {"domid": "0", "gref": f"xs:{path}/gref"})
        finally:
            store.rm(path)
        assert run.ok, _failures(run)
        assert steps[0].name == "read gref from XenStore"
        assert steps[0].result["gref"] == offer.grefs[0]
        assert _by_name(steps, "read the mapped page").result["text"] == "granted by the test"


def test_map_grant_of_a_bad_xs_value_names_path_and_bytes(store: XenStore) -> None:
    path = "/local/domain/0/data/grantscope-test-bad"
    store.write(f"{path}/gref", b"0x1f\n")
    try:
        run, steps = _run("map-grant", {"domid": "0", "gref": f"xs:{path}/gref"})
    finally:
        store.rm(path)
    assert not run.ok and len(steps) == 1
    assert f"{path}/gref" in steps[0].explanation and "0x1f" in steps[0].explanation


def test_notify_reaches_the_port() -> None:
    with EventChannel() as peer:
        port = peer.bind_unbound(0)
        run, _ = _run("notify", {"domid": "0", "port": str(port), "count": "3"})
        assert run.ok, _failures(run)
        fired: list[int] = []
        deadline = time.monotonic() + 5
        while port not in fired and time.monotonic() < deadline:
            fired += peer.wait(0.5)
        assert port in fired


@pytest.mark.parametrize(
    ("domid", "gref", "status", "name"),
    [(0, 4000, -3, "bad_gntref"), (999, 8, -2, "bad_domain"), (DOMID_SELF, 8, -1,
                                                              "general_error")],
)
def test_explain_map_on_failing_grants(domid: int, gref: int, status: int, name: str) -> None:
    run, steps = _run("explain-map", {"domid": str(domid), "gref": str(gref)})
    assert run.ok, _failures(run)
    mapped = _by_name(steps, "map the grant")
    assert not mapped.ok and mapped.errno_name == "EINVAL"
    result = _by_name(steps, "explain").result
    assert (result["status"], result["status_name"]) == (status, name)
    assert result["causes"]
    if domid == DOMID_SELF:
        assert "DOMID_SELF" in result["causes"][0]


def test_explain_map_grant_to_another_domain_is_general_error() -> None:
    # The origin bug: the page was granted to some other domid, and dom0 maps it.
    with GrantOffer(7, 1, writable=True) as offer:
        run, steps = _run("explain-map", {"domid": "0", "gref": str(offer.grefs[0])})
    assert run.ok, _failures(run)
    result = _by_name(steps, "explain").result
    assert (result["status"], result["mapped"]) == (-1, False)
    assert "d0" in result["causes"][0]


def test_explain_map_read_only_grant_mapped_writable() -> None:
    with GrantOffer(0, 1, writable=False) as offer:
        run, steps = _run("explain-map", {"domid": "0", "gref": str(offer.grefs[0]),
                                          "writable": "true"})
    assert run.ok, _failures(run)
    result = _by_name(steps, "explain").result
    assert (result["status"], result["mapped"]) == (0, False)
    assert "read-only" in result["causes"][0]


# -- against a real PV domU peer ----------------------------------------------------------
@pytest.fixture(scope="module")
def offering_domu() -> Iterator[DomU]:
    """A PV domU that grants a page and offers a port to dom0, and notifies back every event.

    Its own (not conftest's offer_domu): under a loaded host the guest took more than that
    fixture's 90 s to publish, so this one waits up to 240 s.
    """
    with DomU("offer", {"text": "hello from the domU"}) as peer:
        peer.wait_key("data/port", timeout=240)
        yield peer
    assert peer.domid is not None
    wait_guest_released(peer.domid)


@pytest.fixture(scope="module")
def mapping_domu() -> Iterator[DomU]:
    """A PV domU that waits for dom0's gref/port under its data/offer, maps, replies, notifies.

    Module-scoped so it is destroyed after the per-test leak check: xenstored and xenconsoled
    drop their ports to a destroyed domain only some time after it is gone.
    """
    with DomU("map", {"reply": "the domU was here"}) as peer:
        peer.wait_key("data/status", timeout=240)  # "waiting" for data/offer/{gref,port}
        yield peer
    assert peer.domid is not None
    wait_guest_released(peer.domid)


def test_map_grant_of_a_domu_page_via_xs(offering_domu: DomU) -> None:
    home = offering_domu.home
    run, steps = _run("map-grant", {"domid": str(offering_domu.domid),
                                    "gref": f"xs:{home}/data/gref"})
    assert run.ok, _failures(run)
    assert _by_name(steps, "read the mapped page").result["text"] == "hello from the domU"


def test_notify_and_pingpong_with_a_domu(offering_domu: DomU) -> None:
    home, domid = offering_domu.home, str(offering_domu.domid)
    run, _ = _run("notify", {"domid": domid, "port": f"xs:{home}/data/port"})
    assert run.ok, _failures(run)
    offering_domu.wait_value("data/notifications", "1", timeout=60)
    # The notify probe closed its end; Xen returns the domU's port to unbound, so it rebinds.
    run, steps = _run("pingpong", {"domid": domid, "port": f"xs:{home}/data/port",
                                   "count": "5", "timeout": "10"})
    assert run.ok, _failures(run)
    assert steps[-1].result["round_trips"] == 5 and steps[-1].result["loop"] == "c"
    offering_domu.wait_value("data/notifications", "6", timeout=60)


def test_explain_map_of_a_domu_grant_meant_for_dom0_from_dom0(
    offering_domu: DomU
) -> None:
    gref = offering_domu.read_key("data/gref")
    assert gref is not None
    run, steps = _run("explain-map", {"domid": str(offering_domu.domid), "gref": gref})
    assert run.ok, _failures(run)
    result = _by_name(steps, "explain").result
    assert result["mapped"] and result["status"] == 0 and result["causes"] == []


def test_offer_page_to_a_mapping_domu(mapping_domu: DomU, store: XenStore) -> None:
    peer = mapping_domu
    path = f"{peer.home}/data/offer"
    run, steps = _run("offer-page", {"domid": str(peer.domid), "publish": path,
                                     "message": "from dom0", "hold": "120", "events": "1"})
    assert run.ok, _failures(run)
    assert _by_name(steps, "hold the offer for the peer").result["events"] == 1
    assert steps[-1].result["text"] == "the domU was here"
    assert peer.read_key("data/seen") == "from dom0"
    assert not store.exists(path)
    gref = _by_name(steps, "grant a page").result["gref"]
    assert _grant_ended(gref)


# -- a probe process killed in the middle ---------------------------------------------
def _start_offer(path: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "grantscope", "probe", "run", "offer-page", "domid=self",
         f"publish={path}", "hold=600", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )


def _wait_published(store: XenStore, path: str, proc: subprocess.Popen[str]) -> tuple[int, int]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        gref, port = store.read_or_none(f"{path}/gref"), store.read_or_none(f"{path}/port")
        if gref is not None and port is not None:
            return int(gref), int(port)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the probe never published under {path}")


def test_sigkill_mid_probe_kernel_releases_grant_and_port_xenstore_keys_stay(
    store: XenStore,
) -> None:
    path = "/local/domain/0/data/grantscope-test-kill"
    proc = _start_offer(path)
    gref, port = _wait_published(store, path, proc)
    assert probe_grant_status(0, gref) == 0 and port in _dom0_ports()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    try:
        assert proc.returncode == -signal.SIGKILL
        assert port not in _dom0_ports()
        assert _grant_ended(gref)
        # Nobody ran the cleanup: the keys the process wrote are still there.
        assert store.read(f"{path}/gref") == str(gref).encode()
    finally:
        store.rm(path)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_mid_probe_runs_the_cleanup(store: XenStore, sig: signal.Signals) -> None:
    """SIGTERM and SIGHUP (an SSH session that drops) run the same cleanup."""
    path = f"/local/domain/0/data/grantscope-test-{sig.name.lower()}"
    proc = _start_offer(path)
    gref, port = _wait_published(store, path, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    try:
        assert proc.returncode == 128 + sig.value, err
        report: dict[str, Any] = json.loads(out)
        assert report["outcome"] == f"interrupted ({sig.name})"
        assert report["steps"][-1]["name"] == "hold the offer for the peer"
        assert report["steps"][-1]["ok"] is False
        assert [c["name"] for c in report["cleanup"]] == [
            f"remove the nodes written under {path}", "close event channel evtchn",
            "end the grant"]
        assert all(c["ok"] for c in report["cleanup"])
        assert not store.exists(path)
        assert port not in _dom0_ports()
        assert _grant_ended(gref)
    finally:
        if store.exists(path):
            store.rm(path)
