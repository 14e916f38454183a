"""``report``'s table and device findings on real Xen, INSIDE dom0 of the lab:

    grantscope lab run -- .venv/bin/pytest -q tests/xen/test_report_pv_device.py

One PV guest (the lab's Python guest, driven through its agent) is booted with
``max_grant_frames = 2``, ``max_maptrack_frames = 2`` and a vif whose backend is dom0's
netback (a kernel backend).  The guest loads no netfront: grantscope.lab.vif_frontend connects
the vif from user space.  On it:

- the guest grants 600 pages: its grant table grows from 1 to 2 frames of 2, and ``grant-frames``
  appears (it was absent before);
- the guest maps 200 of dom0's pages (two maptrack entries each in a PV guest): its maptrack
  reaches 2 frames of 2 and ``maptrack-frames`` appears; 160 more pages cannot be mapped, and
  the failure, seen from inside the guest, names the full maptrack;
- the frontend notifies netback in a loop with nothing queued (a rogue frontend):
  ``grantscope report --json`` shows ``evtchn-spurious`` for the backend device, and the vif's
  row joins its ring grants (mapped by d0), both ends of its port, netback's IRQ and the
  device's counters; ``report`` run inside the guest shows the same device with both states.
  The frontend then closes the device cleanly (the leak check proves netback let go of its
  port).

Xen never shrinks a grant table, so the frame test runs first.  The last test sets up all
three conditions at once and checks that the TUI's Findings tab (``6``, ``a``) lists them.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pilot import SIZE, async_test, open_tab, settle, wait_for

from grantscope.cli.report import collect_observation
from grantscope.lab.domu import lab_vif
from grantscope.lab.guest import PyGuest, guest_session
from grantscope.model.findings import Finding, analyze
from grantscope.xen.gntalloc import GrantOffer

pytestmark = [pytest.mark.xen, pytest.mark.timeout(1500)]

GRANTSCOPE = str(Path(sys.executable).with_name("grantscope"))
GRANTSCOPE_IN_GUEST = "grantscope"  # on the guest image's PATH
OFFER = ("import time\nfrom grantscope.xen.gntalloc import GrantOffer\n"
         "o = GrantOffer(0, pages=600)\nprint(len(o.grefs), 'granted', flush=True)\n"
         "time.sleep(600)\n")
MAP = ("import sys, time\nfrom grantscope.xen.gntdev import GrantMapping\n"
       "m = GrantMapping(0, [int(g) for g in sys.argv[1].split(',')], writable=False)\n"
       "print(m.read(0, 5).decode(), 'mapped', flush=True)\ntime.sleep(600)\n")


@pytest.fixture(scope="module")
def guest() -> Iterator[PyGuest]:
    """The module's PV guest with small grant/maptrack limits and one lab vif."""
    options = {"max_grant_frames": "2", "max_maptrack_frames": "2", "vif": lab_vif()}
    with guest_session("pv", xl_options=options) as booted:
        yield booted


def _table_findings(domid: int) -> tuple[dict[str, Finding], dict[str, tuple[int, int]]]:
    """This guest's grant-frames/maptrack-frames findings, and its frames as the dump says."""
    obs, _extra, _cap = collect_observation(interval=0.0, capture=True)
    assert obs.console is not None and obs.console.grants is not None, obs.unavailable
    (table,) = [t for t in obs.console.grants.tables if t.domid == domid]
    frames = {"grant": (table.frames or 0, table.max_frames or 0),
              "maptrack": (table.maptrack_frames or 0, table.max_maptrack_frames or 0)}
    found = {f.code: f for f in analyze(obs).findings
             if f.code in ("grant-frames", "maptrack-frames") and f.subject["domid"] == domid}
    return found, frames


def _device_findings(backend: str) -> dict[str, Finding]:
    """``device-state`` and ``evtchn-spurious`` about the vif whose backend is ``backend``,
    from 2 s of counters (no dumps: neither finding needs them)."""
    obs, _extra, _cap = collect_observation(interval=2.0, dumps=False)
    return {f.code: f for f in analyze(obs).findings
            if f.code in ("device-state", "evtchn-spurious")
            and backend in (f.subject.get("backend_path"), f.subject.get("path"))}


def _stop(guest: PyGuest, number: int) -> str:
    guest.signal(number)
    return guest.result(number).stdout


def test_grant_frames_finding_appears_when_the_guest_fills_its_table(guest: PyGuest) -> None:
    domid = guest.domid
    assert domid is not None
    before, frames = _table_findings(domid)
    assert frames["grant"] == (1, 2) and "grant-frames" not in before, (frames, before)
    offer = guest.submit(["python3", "-c", OFFER])
    try:
        guest.wait_line(offer, "granted")
        after, frames = _table_findings(domid)
    finally:
        _stop(guest, offer)
    assert frames["grant"] == (2, 2)
    finding = after["grant-frames"]
    assert finding.severity == "error"
    assert finding.title == f"d{domid} uses 2 of 2 (100 %) of its grant frames"
    assert "max_grant_frames" in finding.action


def test_maptrack_finding_and_the_map_that_no_longer_fits(guest: PyGuest) -> None:
    domid = guest.domid
    assert domid is not None
    before, frames = _table_findings(domid)
    assert frames["maptrack"] == (0, 2) and "maptrack-frames" not in before, (frames, before)
    with GrantOffer(domid, pages=360) as offer:
        offer.write(0, b"dom0!")
        mapper = guest.submit(["python3", "-c", MAP, ",".join(map(str, offer.grefs[:200]))])
        try:
            assert guest.wait_line(mapper, "mapped").startswith("dom0! mapped")
            after, frames = _table_findings(domid)
            guest.write_key("data/more-grefs", " ".join(map(str, offer.grefs[200:])))
            over = guest.run([GRANTSCOPE_IN_GUEST, "map", "--domid", "0", "--ro",
                              "--json", "--gref", f"xs:{guest.home}/data/more-grefs"])
        finally:
            _stop(guest, mapper)
    assert frames["maptrack"] == (2, 2)
    finding = after["maptrack-frames"]
    assert finding.severity == "error" and "no_space" in finding.action
    # Inside the guest: mmap says EINVAL, every GRANT_COPY says okay, and the first cause
    # named is the full maptrack (a read-only map: write access is not a suspect).
    assert over.rc == 1, over.stderr
    error = json.loads(over.stdout)["error"]
    assert error["errno_name"] == "EINVAL" and error["call"] == "mmap"
    assert len(error["arguments"]["grefs"]) == 160
    assert "maptrack table is full" in error["causes"][0]
    assert "160 page(s) need 320" in error["causes"][0]


def test_rogue_frontend_shows_as_spurious_events_on_the_joined_device(guest: PyGuest) -> None:
    domid = guest.domid
    assert domid is not None
    backend = f"/local/domain/0/backend/vif/{domid}/0"
    # Before: the guest loads no netfront, so its real vif is held short of Connected.
    before = _device_findings(backend)
    assert set(before) == {"device-state"}, before
    assert "is not Connected" in before["device-state"].title
    front = guest.submit(["python3", "-m", "grantscope.lab.vif_frontend",
                          "--quiet-until-usr1", "600", "--notify-seconds", "120"])
    try:
        guest.wait_value(f"{backend}/state", "4", timeout=120)
        guest.wait_line(front, '"quiet"')
        # Connected and quiet: neither finding (the baseline the storm is measured against).
        quiet = _device_findings(backend)
        guest.signal(front, signal.SIGUSR1)
        guest.wait_line(front, '"notifying"')
        proc = subprocess.run([GRANTSCOPE, "report", "--json", "--capture", "--interval", "2"],
                              capture_output=True, text=True, timeout=600, check=False)
        inside = guest.run([GRANTSCOPE_IN_GUEST, "report", "--json", "--interval", "0"])
    finally:
        guest.signal(front, signal.SIGTERM)
        done = guest.result(front)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["state"] == "connected" and lines[-1]["state"] == "closed", done.stdout
    assert lines[1]["state"] == "quiet", done.stdout
    assert lines[-1]["stopped_early"] is True and lines[-1]["sent"] > 0
    assert quiet == {}, quiet
    # The device closed both ways: the frontend's Closing made netback disconnect.
    assert guest.read_key(f"{backend}/state") == "6"
    # After: no more spurious events; the closed device is named as not Connected again.
    after = _device_findings(backend)
    assert set(after) == {"device-state"}, after
    assert "Closed" in after["device-state"].title, after["device-state"].title
    spurious = [f for f in doc["findings"] if f["code"] == "evtchn-spurious"
                and f["subject"]["device"] == f"vif-{domid}-0"]
    assert len(spurious) == 1, doc["findings"]
    # During: Connected both ways, so no device-state finding beside the spurious events.
    assert not [f for f in doc["findings"] if f["code"] == "device-state"
                and f["subject"]["backend_path"] == backend], doc["findings"]
    assert spurious[0]["subject"]["path"] == backend
    assert spurious[0]["evidence"][0].startswith("spurious_events rose ")
    (row,) = [d for d in doc["devices"] if d["kind"] == "vif" and d["frontend_domid"] == domid]
    assert (row["frontend_state_name"], row["backend_state_name"]) == ("Connected", "Connected")
    connected = lines[0]
    refs = {g["key"]: g for g in row["grants"]}
    assert refs["tx-ring-ref"]["ref"] == connected["tx_ref"]
    assert refs["rx-ring-ref"]["ref"] == connected["rx_ref"]
    assert all(g["mappers"] == [{"domid": 0, "pin": "0x00000001"}] for g in refs.values())
    (port,) = row["ports"]
    assert port["frontend_port"] == connected["port"]
    assert port["backend"]["domid"] == 0 and port["backend"]["remote_port"] == connected["port"]
    assert [i["action"] for i in row["irqs"]] == [f"vif{domid}.0-q0"]
    assert [c["device"] for c in row["counters"]] == [f"vif-{domid}-0"]

    # The same device as the guest sees it: it cannot list dom0's tree but may read its
    # backend's directory, so both states are known; the dumps need dom0 and are said missing.
    assert inside.rc == 0, inside.stderr
    mine = json.loads(inside.stdout)
    (front_row,) = [d for d in mine["devices"] if d["kind"] == "vif"]
    assert (front_row["frontend_state_name"], front_row["backend_state_name"]) == (
        "Connected", "Connected")
    assert sorted(g["ref"] for g in front_row["grants"]) == sorted(
        [connected["tx_ref"], connected["rx_ref"]])
    assert all(g["mappers"] is None for g in front_row["grants"])  # unknown, not "none"
    assert any(c.startswith("grant-table and maptrack headroom") for c in mine["not_checked"])


@pytest.mark.timeout(1500)  # Textual under QEMU TCG is slow
@async_test
async def test_findings_tab_lists_all_three_on_the_real_host(guest: PyGuest) -> None:
    from textual.widgets import DataTable

    from grantscope.host.xen import XenHost
    from grantscope.ui.app import GrantscopeApp
    from grantscope.ui.panes.findings import FindingsPane

    domid = guest.domid
    assert domid is not None
    running = [guest.submit(["python3", "-c", OFFER])]  # frames: 2 of 2 (again, or first)
    try:
        guest.wait_line(running[0], "granted")
        with GrantOffer(domid, pages=200) as offer:
            running.append(guest.submit(["python3", "-c", MAP, ",".join(map(str, offer.grefs))]))
            guest.wait_line(running[1], "mapped")
            running.append(guest.submit(["python3", "-m", "grantscope.lab.vif_frontend",
                                         "--notify-seconds", "200"]))
            guest.wait_value(f"/local/domain/0/backend/vif/{domid}/0/state", "4", timeout=120)
            app = GrantscopeApp(XenHost(), live=False)
            async with app.run_test(size=SIZE) as pilot:
                await settle(pilot)
                pane = await open_tab(pilot, "6", FindingsPane, focused=True)
                await pilot.press("a")
                assert await wait_for(pilot, lambda: pane.snapshot is not None, 600)
                snap = pane.snapshot
                assert snap is not None
                table = pane.query_one("#findings-table", DataTable)
                assert await wait_for(pilot, lambda: table.row_count == len(snap.findings), 120)
                shown = [tuple(str(c) for c in table.get_row_at(i))
                         for i in range(table.row_count)]
            for number in reversed(running[1:]):
                guest.signal(number)
                guest.result(number)
            running = running[:1]
    finally:
        for number in running:
            guest.signal(number)
            guest.result(number)
    rows = {(r[1], r[2]) for r in shown}
    # Subjects name domains as "dN name" (the guest's name from XenStore follows its domid).
    me = re.compile(rf"domid=d{domid}(?: |$)")
    assert any(code == "grant-frames" and me.match(subject) for code, subject in rows), shown
    assert any(code == "maptrack-frames" and me.match(subject) for code, subject in rows), shown
    assert any(code == "evtchn-spurious" and f"device=vif-{domid}-0" in subject
               for code, subject in rows), shown
    # The guest's 200 mapped dom0 pages: one row, with the refs as ranges.
    leaks = [r for r in shown if r[1] == "grant-unowned"
             and re.search(rf"mapper=d{domid}(?: |$)", r[2])]
    assert len(leaks) == 1 and leaks[0][3].startswith("200 grants of d0 (refs "), shown
