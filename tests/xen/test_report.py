"""``report`` against real Xen, INSIDE dom0 of the lab:

    grantscope lab run -- .venv/bin/pytest -q tests/xen/test_report.py

- a deliberate leak: a process offers a page (gntalloc), a peer maps it, the offering process
  is SIGKILLed: the grant stays mapped and ``report`` says so, naming the mapper;
- a deliberate storm: a peer process notifies in a loop: ``report`` names the IRQ;
- with a PV domU running, ``report --json`` shows the joined device rows;
- the dump capture reads complete g/e dumps through the real console ring;
- with one PV domU peer shared by three tests (a domU boot costs 15-30 s): its XenStore node
  quota pushed past the threshold, a device of it stuck in Initialised, and a dom0 grant it
  maps and holds after the offering dom0 process is SIGKILLed (the finding names the domU);
- a backend directory for a domain that does not exist is a stale backend (``report --json``).

The collection runs in this process (:func:`collect_observation`); one test spawns the CLI to
check the process boundary (exit status, one JSON document).
"""

from __future__ import annotations

import ctypes
import glob
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grantscope.cli.report import collect_observation
from grantscope.lab.build import current_build
from grantscope.lab.domu import DomU, lab_vif
from grantscope.lab.leaks import wait_guest_released, wait_ports_released
from grantscope.model.findings import Finding, Thresholds, analyze
from grantscope.sources.hvdump import capture_dumps
from grantscope.sources.quota import read_quota
from grantscope.xen.evtchn import EventChannel
from grantscope.xen.gntdev import GrantMapping
from grantscope.xen.xenstore import XenStore

pytestmark = pytest.mark.xen

GRANTSCOPE = [str(Path(sys.executable).with_name("grantscope"))]

OFFERER = """
import os, sys, time
from grantscope.xen.gntalloc import GrantOffer
offer = GrantOffer(0, pages=1, writable=True)
offer.write(0, b"leaked page")
sys.stdout.write(f"{offer.grefs[0]}\\n")
sys.stdout.flush()
time.sleep(600)
"""

NOTIFIER = """
import sys
from grantscope.xen.evtchn import EventChannel
ch = EventChannel()
port = ch.bind_interdomain(0, int(sys.argv[1]))
sys.stdout.write("bound\\n")
sys.stdout.flush()
while True:
    ch.notify(port)
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()


def test_capture_reads_complete_dumps() -> None:
    cap = capture_dumps("ge")
    assert cap.unavailable == "", cap.unavailable
    assert cap.problems == ()
    assert cap.parse is not None and cap.parse.unparsed == ()
    g = cap.parse.grants
    assert g is not None and g.complete and 0 in [t.domid for t in g.tables]
    ev = cap.parse.events
    assert ev is not None and ev.begin_seen and ev.domains[0].domid == 0
    # dom0's own VIRQ_TIMER port is always there.
    assert any(p.state_name == "virq" for p in ev.domains[0].ports)


def test_leak_after_the_offering_process_is_killed() -> None:
    def about_the_grant() -> list[Finding]:
        # capture=True: fresh g/e dumps (report and bundle no longer send debug keys unasked).
        obs, _extra, _cap = collect_observation(interval=0.5, capture=True)
        return [f for f in analyze(obs).findings
                if f.subject.get("ref") == gref and f.subject.get("granter") == 0]

    offerer = _spawn(OFFERER)
    try:
        assert offerer.stdout is not None
        gref = int(offerer.stdout.readline())
        # Before anything maps it: an offered grant nobody uses is not a finding.
        unmapped = about_the_grant()
        assert unmapped == [], [f.to_json() for f in unmapped]
        mapping = GrantMapping(0, [gref], writable=False)
    except BaseException:
        _stop(offerer)
        raise

    try:
        assert mapping.read(0, 11) == b"leaked page"
        # Before the fault: the offerer is alive; its grant, mapped by dom0 and named in no
        # XenStore key, is only "unowned" (a warning), never orphaned.
        before = about_the_grant()
        assert [f.code for f in before] == ["grant-unowned"], [f.to_json() for f in before]
        offerer.send_signal(signal.SIGKILL)
        offerer.wait(timeout=30)
        found = about_the_grant()
        # Exactly one finding, and it is grant-orphaned (the mapper is known), not unowned.
        assert [f.code for f in found] == ["grant-orphaned"], [f.to_json() for f in found]
        leak = found[0]
        assert leak.severity == "error"
        assert leak.subject["mapper"] == 0
        assert any(f"pid {os.getpid()} " in e for e in leak.evidence), leak.evidence
    finally:
        mapping.close()
        _stop(offerer)
    # Unmapped: the kernel frees the page, and the finding is gone.
    obs, _extra, _cap = collect_observation(interval=0.0, capture=True)
    assert not [f for f in analyze(obs).findings if f.subject.get("ref") == gref
                and f.subject.get("granter") == 0]


@pytest.fixture
def receiver() -> Iterator[tuple[EventChannel, int]]:
    with EventChannel() as ch:
        yield ch, ch.bind_unbound(0)


def test_storm_from_a_peer_notifying_in_a_loop(receiver: tuple[EventChannel, int]) -> None:
    ch, port = receiver
    stop = threading.Event()
    received = [0]

    def drain() -> None:  # keep unmasking, as a real consumer would
        while not stop.is_set():
            received[0] += len(ch.wait(0.2))

    comm = Path("/proc/self/comm").read_text().strip()[:15]

    def storms_named_here() -> list[Finding]:
        quiet, _extra, _cap = collect_observation(interval=3.0, dumps=False)
        return [f for f in analyze(quiet, Thresholds(storm_rate=20)).findings
                if f.code == "irq-storm" and f.subject["action"] == f"evtchn:{comm}"]

    # Before the fault: this process's port is bound, but nobody notifies it.
    assert storms_named_here() == []
    notifier = _spawn(NOTIFIER, str(port))
    thread = threading.Thread(target=drain, daemon=True)
    try:
        assert notifier.stdout is not None and notifier.stdout.readline() == "bound\n"
        thread.start()
        obs, _extra, _cap = collect_observation(interval=3.0, dumps=False)
    finally:
        stop.set()
        thread.join(timeout=10)
        _stop(notifier)
    assert obs.interrupts_before is not None and obs.interrupts_after is not None
    before = obs.interrupts_before.by_irq()
    rates = {
        r.irq: (r.total - before[r.irq].total) / obs.interval
        for r in obs.interrupts_after.rows
        if r.irq in before and r.chip.startswith("xen-dyn")
    }
    evidence = ({r.irq: (r.action, round(rates.get(r.irq, 0), 1))
                 for r in obs.interrupts_after.rows if r.chip.startswith("xen-dyn")},
                received[0], obs.interval)
    # Under TCG on a loaded 2-core host a Python consumer manages tens to hundreds of events a
    # second (real hardware: tens of thousands), so the threshold is set to what this lab can
    # show; the default (500/s) is a policy for real hosts, tested in tests/unit.  The storm
    # must still be the busiest event-channel irq and be named with this process.
    storms = [f for f in analyze(obs, Thresholds(storm_rate=20)).findings
              if f.code == "irq-storm"]
    mine = [f for f in storms if f.subject["action"] == f"evtchn:{comm}"]
    assert mine, ([f.to_json() for f in storms], evidence)
    assert rates[mine[0].subject["irq"]] == max(rates.values()), evidence
    assert f"'{comm}'" in mine[0].action
    # After: the notifier is gone, the port is quiet again, and so is the finding.
    assert storms_named_here() == []


def test_storm_at_the_default_threshold_from_a_c_loop() -> None:
    """The default threshold (500/s), reached by the lab's C peer: its loopback ping-pong
    (``xenpeer bench-evtchn``) notifies and unmasks as fast as dom0 allows, on two ports."""
    def storms() -> list[Finding]:
        quiet, _extra, _cap = collect_observation(interval=3.0, dumps=False)
        return [f for f in analyze(quiet).findings
                if f.code == "irq-storm" and f.subject["action"].startswith("evtchn:")]

    assert storms() == []  # before: no event-channel user storms at the default
    peer = subprocess.Popen([str(current_build().peer), "bench-evtchn", "1000000", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # both ports bound and the loop running
        assert peer.poll() is None, peer.stderr.read() if peer.stderr else ""
        obs, _extra, _cap = collect_observation(interval=3.0, dumps=False)
    finally:
        peer.kill()
        peer.wait(timeout=30)
        if peer.stderr is not None:
            peer.stderr.close()
    found = [f for f in analyze(obs).findings if f.code == "irq-storm"]
    mine = [f for f in found if f.subject["action"] == "evtchn:xenpeer"]
    # Both ends of the loopback fire once per round trip: two IRQs, both above 500/s.
    assert len(mine) == 2, [f.to_json() for f in found]
    assert all(f.subject["rate"] >= Thresholds().storm_rate for f in mine)
    assert all("process 'xenpeer'" in f.action for f in mine)
    assert storms() == []  # after: the peer is gone, and so is the storm


def test_report_with_a_pv_domu_shows_joined_rows() -> None:
    with DomU("offer", {"text": "joined"}) as peer:
        # Generous: under TCG on a loaded host the guest takes minutes to publish.
        peer.wait_key("data/port", timeout=600)
        domid = peer.domid
        assert domid is not None
        with XenStore.open() as xs:
            gref = int(xs.read(f"/local/domain/{domid}/data/gref"))
        with GrantMapping(domid, [gref], writable=False) as m:
            assert m.read(0, 6) == b"joined"
            proc = subprocess.run([*GRANTSCOPE, "report", "--json", "--capture", "--interval",
                                   "0.5"], capture_output=True, text=True, timeout=600,
                                  check=False)
    wait_guest_released(domid)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["unparsed"] == [] and doc["dump_problems"] == []
    names = [d["name"] for d in doc["devices"]]
    mine = [d for d in doc["devices"] if d["frontend_domid"] == domid]
    assert mine, names
    # The domU's grant mapped by this process appears in the g dump, mapped by d0.
    tables = {t["domid"]: t for t in doc["grant_tables"]}
    assert any(e["ref"] == gref and e["mapper"] == 0 for e in tables[domid]["entries"])
    # Its event channels are in the e dump too.
    assert domid in [d["domid"] for d in doc["event_domains"]]
    assert any(q["domid"] == domid for q in doc["quota"]["usage"])


# ------------------------------------------------------------------ findings on written state


class Written:
    """XenStore nodes a test writes, removed on exit: the topmost node the writes created."""

    def __init__(self, xs: XenStore) -> None:
        self.xs = xs
        self.created: list[str] = []

    def write(self, path: str, value: str) -> None:
        # Remember the first ancestor that did not exist: removing it removes all we made.
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/" + "/".join(parts[:i])
            if not self.xs.exists(prefix):
                if not any(prefix == c or prefix.startswith(c + "/") for c in self.created):
                    self.created.append(prefix)
                break
        self.xs.write(path, value.encode())

    def __enter__(self) -> Written:
        return self

    def __exit__(self, *exc: object) -> None:
        for path in reversed(self.created):
            if self.xs.exists(path):
                self.xs.rm(path)


def _findings(code: str, *, dumps: bool = False) -> tuple[list[Finding], list[dict[str, object]]]:
    obs, _extra, _cap = collect_observation(interval=0.0, dumps=dumps, capture=dumps)
    all_found = analyze(obs).findings
    return [f for f in all_found if f.code == code], [f.to_json() for f in all_found]


def _unused_domid() -> int:
    listed = subprocess.run(["xl", "list"], capture_output=True, text=True, check=True).stdout
    used = {int(line.split()[1]) for line in listed.splitlines()[1:] if len(line.split()) > 1}
    return next(d for d in range(31000, 32000) if d not in used)


def test_stale_backend_for_a_domain_that_does_not_exist() -> None:
    gone = _unused_domid()
    base = f"/local/domain/0/backend/vbd/{gone}/51712"
    def about_gone() -> list[Finding]:
        found, _everything = _findings("stale-backend")
        return [f for f in found if f.subject["frontend"] == gone]

    assert about_gone() == []  # before the fault
    with XenStore.open() as xs, Written(xs) as w:
        assert not xs.exists(f"/local/domain/{gone}")
        w.write(f"{base}/frontend", f"/local/domain/{gone}/device/vbd/51712")
        w.write(f"{base}/frontend-id", str(gone))
        w.write(f"{base}/state", "4")
        proc = subprocess.run([*GRANTSCOPE, "report", "--json", "--no-dumps", "--interval", "0"],
                              capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    stale = [f for f in doc["findings"] if f["code"] == "stale-backend"]
    assert [f["subject"] for f in stale] == [
        {"backend": 0, "kind": "vbd", "frontend": gone,
         "path": f"/local/domain/0/backend/vbd/{gone}"}
    ], doc["findings"]
    assert any(f"/local/domain/{gone} does not exist" in e for f in stale for e in f["evidence"])
    with XenStore.open() as xs:  # removed again: the finding's subject is gone
        assert not xs.exists(f"/local/domain/0/backend/vbd/{gone}")
    assert about_gone() == []  # and so is the finding


def _destroy_outside_the_toolstack(domid: int) -> None:
    """What a crashed toolstack or a bare domctl leaves: Xen destroys the domain, nothing
    removes its XenStore nodes (libxenctrl's xc_domain_destroy, not libxl)."""
    lib = sorted(glob.glob("/usr/lib/*/libxenctrl.so.4*"))
    assert lib, "libxenctrl not found"
    xc = ctypes.CDLL(lib[0])
    xc.xc_interface_open.restype = ctypes.c_void_p
    handle = xc.xc_interface_open(None, None, 0)
    assert handle, "xc_interface_open failed"
    try:
        assert xc.xc_domain_destroy(ctypes.c_void_p(handle), ctypes.c_uint32(domid)) == 0
    finally:
        xc.xc_interface_close(ctypes.c_void_p(handle))


def test_stale_backend_from_a_guest_destroyed_outside_the_toolstack() -> None:
    """A real guest with a vif, destroyed by Xen behind libxl's back: its home and dom0's
    backend directory stay, and only xenstored knows the domain is gone."""
    guest = DomU("offer", {"text": "stale"}, xl_options={"vif": lab_vif()})
    guest.start()
    domid = guest.domid
    assert domid is not None
    backend = f"/local/domain/0/backend/vif/{domid}"
    home = f"/local/domain/{domid}"

    def about_it() -> list[Finding]:
        found, _everything = _findings("stale-backend")
        return [f for f in found if f.subject["frontend"] == domid]

    try:
        guest.wait_key("data/port", timeout=600)
        assert about_it() == []  # before: a live guest's backend is not stale
        _destroy_outside_the_toolstack(domid)
        deadline = time.monotonic() + 120
        with XenStore.open() as xs:
            while xs.is_introduced(domid):
                assert time.monotonic() < deadline, "xenstored still knows the domain"
                time.sleep(1)
            assert xs.exists(home) and xs.exists(backend)  # nothing was cleaned up
        found = about_it()
        # Both of its backend directories in dom0: the vif's and the PV console's.
        console = f"/local/domain/0/backend/console/{domid}"
        assert sorted(f.subject["path"] for f in found) == [console, backend], found
        assert all(any("left behind" in e for e in f.evidence) for f in found), found
        assert all(f"xenstore-rm {home}" in f.action for f in found)
        proc = subprocess.run([*GRANTSCOPE, "report", "--json", "--no-dumps", "--interval",
                               "0"], capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert sorted(f["subject"]["path"] for f in doc["findings"]
                      if f["code"] == "stale-backend" and f["subject"]["frontend"] == domid) \
            == [console, backend]
    finally:
        with XenStore.open() as xs:  # what the toolstack would have removed
            vm = xs.read_or_none(f"{home}/vm")
            for path in (backend, f"/local/domain/0/backend/console/{domid}", home,
                         f"/libxl/{domid}", vm.decode() if vm else ""):
                if path and xs.exists(path):
                    xs.rm(path)
        if guest.alive():
            guest.destroy()
    wait_ports_released(domid)
    assert about_it() == []  # after: removed, and so is the finding


@pytest.fixture(scope="module")
def holder() -> Iterator[DomU]:
    """A PV domU running the ``map`` scenario that keeps what it maps (gs_hold=1).

    It waits (up to gs_wait seconds) for dom0 to publish a gref and port under data/offer, so
    until the leak test does that it is simply a running guest the other tests write about.
    """
    peer = DomU("map", {"path": "data/offer", "hold": 1, "wait": 1500, "life": 1800})
    peer.start()
    try:
        peer.wait_key("data/status", timeout=600)  # "waiting": its xenbus connection is up
        yield peer
    finally:
        domid = peer.domid
        peer.destroy()
        if domid is not None:
            wait_guest_released(domid)


def test_xenstore_quota_of_a_domu_near_its_limit(holder: DomU) -> None:
    domid = holder.domid
    assert domid is not None
    snap = read_quota([domid])
    assert snap.usage and snap.limits_source == "xenstored", snap.unavailable
    limit, used = snap.limits["nodes"], snap.usage[0].usage["nodes"]
    # 4.17's default is 1000 nodes; the threshold is 80 %: stay below the hard limit.
    need = math.ceil(Thresholds().headroom * limit) - used + 5
    assert 0 < need < limit - used, (limit, used)

    def about_nodes() -> list[Finding]:
        found, _everything = _findings("xenstore-quota")
        return [f for f in found if f.subject["domid"] == domid and f.subject["quota"] == "nodes"]

    assert about_nodes() == []  # before the fault
    with XenStore.open() as xs, Written(xs) as w:
        # Nodes dom0 creates under the domU's home inherit the domU as owner, so xenstored
        # counts them against the domU's quota.
        for i in range(need):
            w.write(f"{holder.home}/data/gs-quota/n{i:04d}", "x")
        owner = xs.get_perms(f"{holder.home}/data/gs-quota/n0000").owner
        found, everything = _findings("xenstore-quota")
    assert owner == domid
    mine = [f for f in found if f.subject["domid"] == domid and f.subject["quota"] == "nodes"]
    assert len(mine) == 1, everything
    assert mine[0].subject["limit"] == limit and mine[0].subject["used"] >= used + need
    assert mine[0].severity == "warning"
    after = read_quota([domid]).usage[0].usage["nodes"]
    assert after <= used + 1, (used, after)  # the nodes are gone again
    assert about_nodes() == []  # and so is the finding


def test_device_stuck_in_initialised(holder: DomU) -> None:
    domid = holder.domid
    assert domid is not None
    fe = f"{holder.home}/device/vif/9"
    be = f"/local/domain/0/backend/vif/{domid}/9"

    def about_vif9() -> list[Finding]:
        found, _everything = _findings("device-state")
        return [f for f in found if f.subject["frontend_path"] == fe]

    assert about_vif9() == []  # before the fault
    with XenStore.open() as xs, Written(xs) as w:
        for key, value in (("backend", be), ("backend-id", "0"), ("state", "3")):
            w.write(f"{fe}/{key}", value)
        for key, value in (("frontend", fe), ("frontend-id", str(domid)), ("state", "3")):
            w.write(f"{be}/{key}", value)
        found, everything = _findings("device-state")
    mine = [f for f in found if f.subject["frontend_path"] == fe]
    assert len(mine) == 1, everything
    assert mine[0].subject["backend_path"] == be
    assert "Initialised" in mine[0].title, mine[0].title
    assert any(f"{fe}/state" in e for e in mine[0].evidence)
    assert "waits for the backend" in mine[0].action
    with XenStore.open() as xs:
        assert not xs.exists(fe) and not xs.exists(be)
    assert about_vif9() == []  # and so is the finding


OFFER_TO = """
import sys, time
from grantscope.xen.evtchn import EventChannel
from grantscope.xen.gntalloc import GrantOffer
domid = int(sys.argv[1])
offer = GrantOffer(domid, pages=1, writable=True)
offer.write(0, b"held by a domU")
ch = EventChannel()
port = ch.bind_unbound(domid)
sys.stdout.write(f"{offer.grefs[0]} {port}\\n")
sys.stdout.flush()
time.sleep(600)
"""


def test_leak_mapped_by_a_domu_after_the_offerer_is_killed(holder: DomU) -> None:
    # Last of the tests sharing the holder: from here on the guest holds a dom0 page.
    domid = holder.domid
    assert domid is not None
    offerer = _spawn(OFFER_TO, str(domid))
    try:
        assert offerer.stdout is not None
        gref, port = map(int, offerer.stdout.readline().split())
        with XenStore.open() as xs, Written(xs) as w:
            w.write(f"{holder.home}/data/offer/gref", str(gref))
            w.write(f"{holder.home}/data/offer/port", str(port))
            holder.wait_value("data/status", "replied", timeout=600)
            assert holder.read_key("data/seen") == "held by a domU"
            offerer.send_signal(signal.SIGKILL)
            offerer.wait(timeout=30)
            obs, _extra, _cap = collect_observation(interval=0.0, capture=True)
    finally:
        _stop(offerer)
    findings = analyze(obs).findings
    mine = [f for f in findings if f.subject.get("granter") == 0 and f.subject.get("ref") == gref]
    assert len(mine) == 1, [f.to_json() for f in findings]
    leak = mine[0]
    assert leak.subject["mapper"] == domid
    assert leak.code == "grant-orphaned" and leak.severity == "error"
    assert f"mapped by d{domid}" in leak.title
    assert any(f"inside d{domid}" in e for e in leak.evidence), leak.evidence
